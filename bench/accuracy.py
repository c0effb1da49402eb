"""Accuracy over a 1,000,000-row window read from Postgres: read + decode, then compute,
with the compute compared in the same run to scikit-learn's accuracy_score on the same arrays.

    .venv/bin/python -m bench.accuracy [--rows 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sklearn.metrics import accuracy_score

from bench.machine import machine_line
from bench.procs import publish_results, say
from bench.services import fresh, versions_seen
from contracts.metrics import Window

REPEAT = 5


def best(fn, repeat: int = REPEAT) -> float:  # type: ignore[no-untyped-def]
    """The fastest of ``repeat`` runs: the least disturbed by the rest of the machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def fill(database_url: str, model: uuid.UUID, rows: int) -> None:
    """One prediction per row, as a model logging each prediction would write them."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO results (model_id, y_true, y_pred, timestamp)"
            " SELECT %s, json_build_array(i %% 2), json_build_array((i / 3) %% 2),"
            "        now() - make_interval(secs => i)"
            " FROM generate_series(1, %s) i",
            (model, rows),
        )
        conn.execute("ANALYZE results")


def run(rows: int, root: Path) -> dict[str, float]:
    with fresh(root, "accuracy") as services, services.in_this_process():
        from workers.metrics import compute, data

        model = uuid.uuid4()
        say(f"filling results with {rows:,} rows")
        fill(services.database_url, model, rows)
        window = Window(last_n=rows)
        fetched = data.fetch(model, window)  # warm the cache and the pool once
        with data.no_gc():  # as the worker runs them (workers/metrics/data.py load_predictions)
            read_s = best(lambda: data.fetch(model, window), 3)
            decode_s = best(lambda: data.parse(fetched, model), 3)
            predictions = data.parse(fetched, model)
        ours = compute.compute(predictions, ["accuracy"])["accuracy"]
        t, p = predictions.frame["y_true"].to_numpy(), predictions.frame["y_pred"].to_numpy()
        theirs = accuracy_score(t, p)
        assert abs(ours - theirs) < 1e-12, (ours, theirs)
        return {
            "rows": float(rows),
            "read_s": read_s,
            "decode_s": decode_s,
            "compute_s": best(lambda: compute.compute(predictions, ["accuracy"])),
            "sklearn_s": best(lambda: accuracy_score(t, p)),
            "accuracy": ours,
        }


def report(f: dict[str, float]) -> str:
    ratio = f["compute_s"] / f["sklearn_s"]
    return "\n".join(
        [
            "## Accuracy over a large window",
            "",
            f"Machine: {machine_line(versions_seen)}",
            "",
            f"{int(f['rows']):,} rows of `results` (one prediction each), window `last_n`, best of several runs.",
            "",
            "| step | time | |",
            "|---|---|---|",
            f"| read from Postgres | {f['read_s']:.2f} s | |",
            f"| decode and validate (JSON per row, label types) | {f['decode_s']:.2f} s | |",
            f"| compute accuracy (polars) | {f['compute_s'] * 1000:.2f} ms | |",
            f"| scikit-learn `accuracy_score`, same arrays | {f['sklearn_s'] * 1000:.2f} ms | |",
            f"| compute / scikit-learn | {ratio:.2f}x | <= 1.0x: {'met' if ratio <= 1.0 else 'not met'} |",
            "",
            f"Both give {f['accuracy']:.6f} (equal to 1e-12).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        figures = run(args.rows, Path(tmp))
    text = report(figures)
    publish_results("accuracy", text)


if __name__ == "__main__":
    main()
