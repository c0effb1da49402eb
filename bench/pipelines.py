"""Benchmark of the pipelines pool: ``.venv/bin/python -m bench.pipelines [--rows N --new N --ingest N]``.

Same run, same data, against fresh embedded servers:

- incremental node: upsert ``--new`` new rows into a ``--rows`` table through the bus
  (HTTP -> broker -> pipelines worker -> Postgres) against the equivalent hand-written
  ``INSERT ... SELECT ... ON CONFLICT`` run with psql;
- ingest: ``--ingest`` rows as JSON over ``PUT /v1/tables/{t}/rows`` until the job has
  upserted them, against psql ``\\copy`` of the same rows as CSV into the empty table;
- sqlglot planning time per node (cold, and cached per catalog version);
- peak RSS of the pipelines worker (its whole process tree) during all of it.

Writes bench/RESULTS-pipelines.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import machine, procinfo
from bench.procs import python, running, say, wait_for
from bench.services import API_KEY, fresh, versions_seen
from devservers import free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS-pipelines.md"
D0 = dt.date(2024, 1, 1)  # the new rows are dated from here on

CATALOG = """
tables:
  bench.source:
    type: transaction
    columns: {id: bigint not null, day: date not null, amount: "numeric(12,2) not null", note: text}
    primary_key: [id]
    watermark: day
  bench.facts:
    type: transaction
    columns: {id: bigint not null, day: date not null, amount: "numeric(12,2) not null", note: text}
    primary_key: [id]
    watermark: day
  bench.ingest:
    type: transaction
    columns: {id: bigint not null, day: date not null, amount: "numeric(12,2) not null", note: text}
    primary_key: [id]
    watermark: day
pipelines:
  bench_load:
    nodes:
      facts:
        target: bench.facts
        sql: SELECT id, day, amount, note FROM bench.source
"""
HAND_WRITTEN = (
    "INSERT INTO bench.facts (id, day, amount, note) SELECT id, day, amount, note FROM bench.source"
    " WHERE day > DATE '{wm}' AND day < DATE '{until}'"
    " ON CONFLICT (id) DO UPDATE SET day = EXCLUDED.day, amount = EXCLUDED.amount, note = EXCLUDED.note"
)


class RssSampler:
    """Peak resident memory of a process tree, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in [self.pid, *procinfo.children(self.pid)]:
                with contextlib.suppress(*procinfo.GONE):
                    total += procinfo.rss_bytes(pid)
            self.peak = max(self.peak, total)
            self._stop.wait(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def psql(url: str, command: str) -> float:
    started = time.perf_counter()
    subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True, capture_output=True)
    return time.perf_counter() - started


def prepare(url: str, rows: int, new: int) -> None:
    """bench.source: ``rows`` old rows and ``new`` new ones; bench.facts: the old rows."""
    say(f"generating {rows:,} + {new:,} rows")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO bench.source SELECT g, DATE '2023-12-31' - (g %% 3650)::int, (g %% 100000) / 100.0, 'n' || g"
            " FROM generate_series(1, %s) g",
            (rows,),
        )
        conn.execute(
            "INSERT INTO bench.source SELECT g, DATE '2024-01-01' + (g %% 30)::int, (g %% 100000) / 100.0, 'n' || g"
            " FROM generate_series(%s, %s) g",
            (rows + 1, rows + new),
        )
        conn.execute("INSERT INTO bench.facts SELECT * FROM bench.source WHERE day < %s", (D0,))
        conn.execute("VACUUM ANALYZE bench.source")
        conn.execute("VACUUM ANALYZE bench.facts")


def reset_facts(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM bench.facts WHERE day >= %s", (D0,))
        conn.execute("VACUUM ANALYZE bench.facts")
        conn.execute("CHECKPOINT")
        conn.execute(
            "INSERT INTO pipeline_watermarks (table_name, watermark) VALUES ('bench.facts', %s)"
            " ON CONFLICT (table_name) DO UPDATE SET watermark = EXCLUDED.watermark",
            (str(D0 - dt.timedelta(days=1)),),
        )


def wait_job(url: str, job_id: str, timeout: float = 1800) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone()
        return row if row and row["status"] in ("succeeded", "dead") else None

    job = wait_for(done, timeout, f"job {job_id}", interval=0.05)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job_id}: {job['error']}")
    return job


def incremental(api: httpx.Client, url: str, new: int, repeat: int) -> dict[str, Any]:
    ours, node, hand = [], [], []
    until = D0 + dt.timedelta(days=31)
    for i in range(repeat):
        reset_facts(url)
        started = time.perf_counter()
        command = {"type": "pipelines.run", "pipeline_id": "bench_load", "run_date": str(until - dt.timedelta(days=1))}
        job = wait_job(url, api.post("/v1/commands", json=command).json()["id"])
        ours.append(time.perf_counter() - started)
        result = job["result"]["nodes"][0]
        assert result["rows"] == new, result
        node.append(result["duration_ms"] / 1000)
        reset_facts(url)
        hand.append(psql(url, HAND_WRITTEN.format(wm=D0 - dt.timedelta(days=1), until=until)))
        say(f"  incremental #{i + 1}: ours {ours[-1]:.2f} s (node {node[-1]:.2f} s), psql {hand[-1]:.2f} s")
    return {"ours": statistics.median(ours), "node": statistics.median(node), "psql": statistics.median(hand)}


def ingest(api: httpx.Client, url: str, count: int, repeat: int, workdir: Path) -> dict[str, Any]:
    say(f"building {count:,} rows as JSON and CSV")
    rows = [
        {"id": i, "day": str(D0 + dt.timedelta(days=i % 30)), "amount": f"{(i % 100000) / 100:.2f}", "note": f"n{i}"}
        for i in range(count)
    ]
    body = json.dumps(rows).encode()
    csv_path = workdir / "ingest.csv"
    csv_path.write_text("".join(f"{r['id']},{r['day']},{r['amount']},{r['note']}\n" for r in rows))
    del rows
    ours, request, hand = [], [], []
    for i in range(repeat):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE bench.ingest")
            conn.execute("CHECKPOINT")
        started = time.perf_counter()
        response = api.put("/v1/tables/bench.ingest/rows", content=body, headers={"Content-Type": "application/json"})
        request.append(time.perf_counter() - started)
        assert response.status_code == 202, response.text[:500]
        wait_job(url, response.json()["id"])
        ours.append(time.perf_counter() - started)
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM bench.ingest").fetchone() == (count,)
            conn.execute("TRUNCATE bench.ingest")
            conn.execute("CHECKPOINT")
        hand.append(psql(url, f"\\copy bench.ingest FROM '{csv_path}' WITH (FORMAT csv)"))
        say(f"  ingest #{i + 1}: ours {ours[-1]:.2f} s (request {request[-1]:.2f} s), psql \\copy {hand[-1]:.2f} s")
    return {
        "ours": statistics.median(ours),
        "request": statistics.median(request),
        "psql": statistics.median(hand),
        "body_mb": len(body) / 1e6,
    }


def planning(catalog_dir: Path) -> dict[str, Any]:
    """sqlglot: parse, check and build every node's statements, per node; then the cached lookup."""
    from pipelines_catalog import catalog, plan

    cat = catalog.load(catalog_dir)
    nodes = sum(len(p.nodes) for p in cat.pipelines.values())
    cold = []
    for _ in range(20):
        plan._cache.clear()
        started = time.perf_counter()
        compiled = plan.compile_catalog(cat, ("catalog",))
        for pipeline in compiled.nodes.values():
            for node in pipeline.values():
                if node.query is not None:
                    [s.postgres() for s in plan.sql_statements(node, "incremental", True)]
        cold.append((time.perf_counter() - started) / nodes)
    started = time.perf_counter()
    for _ in range(1000):
        plan.compile_catalog(catalog.current(catalog_dir), ("catalog",))
    cached = (time.perf_counter() - started) / 1000
    return {"nodes": nodes, "cold_ms": statistics.median(cold) * 1000, "cached_ms": cached * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--new", type=int, default=1_000_000)
    parser.add_argument("--ingest", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipelines-"))
    catalog_dir = workdir / "catalog"
    catalog_dir.mkdir()
    for source in (ROOT / "catalog").glob("*.yaml"):
        shutil.copy(source, catalog_dir / source.name)
    (catalog_dir / "bench.yaml").write_text(CATALOG)
    try:
        with fresh(workdir, "pipelines") as services:
            url = services.database_url
            env = {
                **services.env(),
                "CATALOG_DIR": str(catalog_dir),
                "INGEST_MAX_BODY_BYTES": str(2**30),
                "JOB_TIME_LIMIT_MS": str(3 * 3600 * 1000),
            }
            port = free_port()
            web_args = python("-m", "uvicorn", "ingress.app:create_app", "--factory", "--port", str(port))
            worker_args = python(
                "-m", "dramatiq", "workers.pools.pipelines", "--queues", "pipelines", "--processes", "1"
            )
            with (
                running("pipelines-web", web_args, env) as web,
                running("pipelines-worker", worker_args, env) as worker,
            ):
                base = f"http://127.0.0.1:{port}"
                wait_for(lambda: _up(base), 60, "web", watch=[web, worker])
                sampler = RssSampler(worker.pid)
                with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=1800) as api:
                    setup = api.post(
                        "/v1/commands",
                        json={"type": "pipelines.setup", "tables": ["bench.source", "bench.facts", "bench.ingest"]},
                    )
                    wait_job(url, setup.json()["id"])
                    prepare(url, args.rows, args.new)
                    say("incremental node vs hand-written INSERT ... ON CONFLICT (psql)")
                    inc = incremental(api, url, args.new, args.repeat)
                    say("ingest over the API vs psql \\copy")
                    ing = ingest(api, url, args.ingest, args.repeat, workdir)
                peak = sampler.stop()
            plans = planning(catalog_dir)
            servers = dict(versions_seen)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write(args, inc, ing, plans, peak, servers)


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def write(args: Any, inc: dict[str, Any], ing: dict[str, Any], plans: dict[str, Any], peak: int, servers: dict) -> None:
    inc_ratio = inc["psql"] / inc["ours"]
    ing_ratio = ing["psql"] / ing["ours"]
    run = f"--rows {args.rows} --new {args.new} --ingest {args.ingest} --repeat {args.repeat}"
    rows = [
        (
            f"incremental node: {args.new:,} new rows upserted into a {args.rows:,}-row table",
            f"{inc['ours']:.2f} s through the bus ({args.new / inc['ours']:,.0f} rows/s); "
            f"the node's transaction alone {inc['node']:.2f} s",
            f"hand-written `INSERT ... SELECT ... ON CONFLICT DO UPDATE` with psql: {inc['psql']:.2f} s "
            f"({args.new / inc['psql']:,.0f} rows/s)",
            f"{inc_ratio:.2f}x",
            ">= 0.8x",
        ),
        (
            f"ingest: {args.ingest:,} rows ({ing['body_mb']:.0f} MB of JSON)",
            f"{ing['ours']:.2f} s from the request to the job's end ({args.ingest / ing['ours']:,.0f} rows/s); "
            f"the request alone (stream, validate, COPY to staging) {ing['request']:.2f} s",
            f"psql `\\copy` of the same rows as CSV into the empty table: {ing['psql']:.2f} s "
            f"({args.ingest / ing['psql']:,.0f} rows/s)",
            f"{ing_ratio:.2f}x",
            ">= 0.5x",
        ),
        (
            f"sqlglot planning per node ({plans['nodes']} nodes: parse, check against the catalog, build, render)",
            f"cold {plans['cold_ms']:.2f} ms; cached per catalog version {plans['cached_ms']:.3f} ms",
            "",
            "",
            "< 5 ms",
        ),
        ("peak RSS of the pipelines worker (its process tree) during both", f"{peak / 2**20:.0f} MiB", "", "", ""),
    ]
    table = "\n".join("| " + " | ".join(r) + " |" for r in rows)
    text = f"""# Pipelines pool benchmark

Machine: {machine.machine_line(servers)}

Run: `.venv/bin/python -m bench.pipelines {run}` (medians of {args.repeat} alternating runs; one
pipelines worker process, 4 threads; embedded PostgreSQL with its default settings; psql {_psql_version()}.

| what | ours | baseline | throughput, ours / baseline | target |
|---|---|---|---|---|
{table}

The incremental run's time includes the HTTP request, the broker, the job bookkeeping, the watermark
lock and its advance (`max()` of the indexed watermark column) in the same transaction; the psql
baseline is the bare statement. The ingest time includes the staging table, the load from it (`ANALYZE`
of the staging table, then one `MERGE` into the table under the table's load lock, writing only new or
changed rows) and the job; the baseline is a plain COPY into the table.
"""
    RESULTS.write_text(text)
    say(f"wrote {RESULTS}")


def _psql_version() -> str:
    done = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().split()[-1] if done.stdout else "?"


if __name__ == "__main__":
    main()
