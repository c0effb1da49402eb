"""Benchmark of the forecast pool's local backend: ``.venv/bin/python -m bench.forecast [--speed-series N]``.

Public data shipped inside PyPI packages (nothing is downloaded): AirPassengers from
statsforecast, and statsmodels' datasets (El Niño, Mauna Loa CO2, electrical equipment,
US macro data, Danish money demand, interest and inflation, sunspots, the Nile).

- Accuracy: every series is cut at up to four origins, a horizon apart; the points after
  an origin (one horizon) are hidden from every method. The local backend runs exactly
  as in a job (its own backtest on the last horizon of what it sees, model choice,
  refit), against naive and seasonal naive. MASE (scaled by the in-sample seasonal naive
  error of what each method saw) and sMAPE, averaged over the windows.
- Speed: ``--speed-series`` monthly windows of 96 points cut from the monthly series,
  horizon 12, fitted by FORECAST_N_JOBS processes as a job would: seconds per 1,000 series.
- Peak RSS: this process and the largest fitting process.

Writes bench/RESULTS-forecast.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import machine
from workers.forecast import frames, local
from workers.forecast.accuracy import mase, smape
from workers.forecast.frames import SeriesData
from workers.forecast.jobs import configured_models, fit_forecasts

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS-forecast.md"
HORIZON = {"MS": 12, "QS": 8, "YS": 10}
ORIGINS = 4


@dataclass
class Named:
    name: str
    freq: str
    values: np.ndarray


def datasets() -> list[Named]:
    """Real series bundled with statsforecast and statsmodels."""
    from statsforecast.utils import AirPassengers
    from statsmodels.datasets import co2, danish_data, elec_equip, elnino, interest_inflation, macrodata, nile, sunspots

    out = [Named("air_passengers", "MS", np.asarray(AirPassengers, dtype=float))]
    nino = elnino.load_pandas().data.drop(columns="YEAR")
    out.append(Named("elnino", "MS", nino.to_numpy(dtype=float).ravel()))
    weekly = co2.load_pandas().data["co2"]
    out.append(Named("co2_monthly", "MS", weekly.resample("MS").mean().interpolate().dropna().to_numpy()))
    out.append(Named("elec_equip", "MS", elec_equip.load_pandas().data.iloc[:, 0].to_numpy(dtype=float)))
    macro = macrodata.load_pandas().data.drop(columns=["year", "quarter"])
    out += [Named(f"macro_{c}", "QS", macro[c].to_numpy(dtype=float)) for c in macro.columns]
    danish = danish_data.load_pandas().data
    out += [Named(f"danish_{c}", "QS", danish[c].to_numpy(dtype=float)) for c in danish.columns if c != "period"]
    rates = interest_inflation.load_pandas().data
    out += [Named(f"interest_{c}", "QS", rates[c].to_numpy(dtype=float)) for c in ("Dp", "R")]
    out.append(Named("sunspots", "YS", sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(dtype=float)))
    out.append(Named("nile", "YS", nile.load_pandas().data["volume"].to_numpy(dtype=float)))
    return [n for n in out if np.all(np.isfinite(n.values))]


def as_series(name: str, freq: str, values: np.ndarray) -> SeriesData:
    return SeriesData(name, freq, pd.Timestamp("2000-01-01", tz="UTC"), values)


def naive(history: np.ndarray, h: int) -> np.ndarray:
    return np.full(h, history[-1])


def seasonal_naive(history: np.ndarray, h: int, m: int) -> np.ndarray:
    if m <= 1 or len(history) < m:
        return naive(history, h)
    return np.array([history[len(history) - m + (i % m)] for i in range(h)])


def accuracy() -> tuple[list[dict[str, float | str]], int]:
    windows: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    for item in datasets():
        h = HORIZON[item.freq]
        for k in range(ORIGINS):
            cut = len(item.values) - (k + 1) * h
            seen = item.values[:cut]
            if len(seen) < 4 * h:  # the local backend needs 2 h itself; keep some history beyond that
                break
            windows.append((f"{item.name}@{k}", item.freq, seen, item.values[cut : cut + h]))
    rows: list[dict[str, float | str]] = []
    for freq in sorted({w[1] for w in windows}):
        group = [w for w in windows if w[1] == freq]
        h, m = HORIZON[freq], frames.SEASON[freq]
        fitted = fit_forecasts([as_series(w[0], freq, w[2]) for w in group], h, [0.1, 0.9])
        by_id = {f.series_id: f for f in fitted}
        for wid, _, seen, hidden in group:
            predictions = {
                "local": by_id[wid].mean,
                "seasonal naive": seasonal_naive(seen, h, m),
                "naive": naive(seen, h),
            }
            rows.append(
                {"window": wid, "freq": freq, "method": "local, as reported by the job", "mase": by_id[wid].mase,
                 "smape": by_id[wid].smape}
            )  # fmt: skip
            for method, p in predictions.items():
                rows.append(
                    {
                        "window": wid,
                        "freq": freq,
                        "method": method,
                        "mase": mase(seen, hidden, p, m),
                        "smape": smape(hidden, p),
                    }
                )
    return rows, len(windows)


def speed_windows(count: int) -> list[SeriesData]:
    monthly = [d for d in datasets() if d.freq == "MS"]
    length = 96
    starts = [(d, s) for d in monthly for s in range(0, len(d.values) - length + 1)]
    picked = np.linspace(0, len(starts) - 1, count).astype(int)
    return [
        as_series(f"w{i}", "MS", starts[j][0].values[starts[j][1] : starts[j][1] + length])
        for i, j in enumerate(picked)
    ]


def children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def pool_phase(work: Any) -> tuple[Any, float]:
    """``work()`` on freshly warmed fitting processes: (its value, their CPU seconds incl. warm-up)."""
    before = children_cpu()
    local.warm_up()
    value = work()
    local.pool().shutdown(wait=True)
    local._pool = None  # the next phase starts its own
    return value, children_cpu() - before


def mib_self() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mib_children() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed-series", type=int, default=1000)
    args = parser.parse_args()
    print(f"forecast bench: {local.jobs()} fitting processes, models {configured_models()}", flush=True)
    # the fitting processes' CPU time is known once they exit: each phase gets a pool of its own
    started = time.perf_counter()
    warm_cpu = pool_phase(lambda: None)[1]
    warm_s = time.perf_counter() - started

    (rows, windows), _ = pool_phase(accuracy)
    table = pd.DataFrame(rows)
    overall = table.groupby("method")[["mase", "smape"]].mean()
    by_freq = table.groupby(["freq", "method"])[["mase", "smape"]].mean()
    print(overall, flush=True)

    series = speed_windows(args.speed_series)
    timing: dict[str, float] = {}

    def timed() -> list[local.SeriesForecast]:
        began = time.perf_counter()
        out = fit_forecasts(series, 12, [0.025, 0.5, 0.975])
        timing["wall"] = time.perf_counter() - began
        return out

    fitted, cpu = pool_phase(timed)
    cpu -= warm_cpu
    elapsed = timing["wall"]
    models = pd.Series([f.model for f in fitted]).value_counts().to_dict()
    speed_mase = float(np.nanmean([f.mase for f in fitted]))
    per_1000 = elapsed / len(series) * 1000
    print(f"{len(series)} series in {elapsed:.1f} s ({per_1000:.1f} s per 1,000)", flush=True)

    gain = 1 - overall.loc["local", "mase"] / overall.loc["seasonal naive", "mase"]
    lines = [
        "# Forecast pool benchmark (local backend)",
        "",
        f"Machine: {machine.machine_line({})}",
        f"Load average at the end (1/5/15 min): {machine.load_average()}; statsforecast"
        f" {__import__('statsforecast').__version__}; {local.jobs()} fitting processes (FORECAST_N_JOBS);"
        f" models {', '.join(configured_models())} (+ their ensemble), chosen per series by the holdout.",
        "",
        "Run: `.venv/bin/python -m bench.forecast"
        + (f" --speed-series {args.speed_series}`" if args.speed_series != 1000 else "`"),
        "",
        "## Accuracy",
        "",
        f"{windows} windows: {len(datasets())} public series shipped in statsforecast and statsmodels, each cut at up"
        f" to {ORIGINS} origins one horizon apart (horizon: 12 months, 8 quarters, 10 years). What follows an origin"
        " is hidden from every method; the local backend runs as in a job on what precedes it (its own backtest"
        " on the last horizon of that, model choice, refit). MASE is scaled by the in-sample seasonal naive error"
        " of what the methods saw; means over the windows.",
        "",
        "| method | MASE | sMAPE % |",
        "|---|---|---|",
        *(
            f"| {m} | {overall.loc[m, 'mase']:.3f} | {overall.loc[m, 'smape']:.2f} |"
            for m in ("local", "seasonal naive", "naive")
        ),
        "",
        f"Local vs seasonal naive: **{gain:.1%} lower MASE** (target: at least 20 % lower).",
        "",
        "What the jobs report as their backtest (MASE and sMAPE on the last horizon of what they saw, the same"
        " holdout that chose the model: an optimistic estimate) against what the same forecasts then scored on"
        f" the hidden horizon: MASE {overall.loc['local, as reported by the job', 'mase']:.3f} reported,"
        f" {overall.loc['local', 'mase']:.3f} realized; sMAPE"
        f" {overall.loc['local, as reported by the job', 'smape']:.2f} % reported,"
        f" {overall.loc['local', 'smape']:.2f} % realized.",
        "",
        "By frequency:",
        "",
        "| frequency | method | MASE | sMAPE % |",
        "|---|---|---|---|",
        *(f"| {f} | {m} | {r.mase:.3f} | {r.smape:.2f} |" for (f, m), r in by_freq.iterrows() if "reported" not in m),
        "",
        "## Speed and memory",
        "",
        f"{len(series)} monthly series of 96 points (windows cut from the monthly series above), horizon 12,"
        " quantiles 0.025 / 0.5 / 0.975: backtest of every model, choice, refit with intervals.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| wall time per 1,000 series | {per_1000:.1f} s |",
        f"| CPU time of the fitting processes per 1,000 series | {cpu / len(series) * 1000:.1f} s"
        f" (wall time on an idle machine: about this / {local.jobs()}) |",
        f"| start-up of the fitting processes (spawn, import, first fit; off the job's path) | {warm_s:.1f} s |",
        f"| peak RSS, this process | {mib_self():.0f} MiB |",
        f"| peak RSS, largest fitting process | {mib_children():.0f} MiB |",
        f"| models chosen | {', '.join(f'{k} {v}' for k, v in models.items())} |",
        f"| mean backtest MASE the jobs would report (last 12 of each window) | {speed_mase:.3f} |",
        "",
        "Measured on the fitting function the worker runs (no broker or database in the loop: they add"
        " milliseconds per job, see bench/RESULTS.md). The machine is shared: other work running at the same"
        " time makes the wall time longer than the CPU time divided by the processes.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
