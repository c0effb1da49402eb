"""``python -m bench``: run the scenarios (see ``bench/__init__.py``) and write ``bench/RESULTS.md``."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench import drains, machine, memory, ticker, web
from bench.procinfo import wait_for_quiet
from bench.procs import ROOT, BenchError, say
from bench.report import render
from bench.results import Results
from bench.services import versions_seen

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "RESULTS.md"
#: bus: (a)/(b); peers: procrastinate and Celery; scale: a bigger pool and a million rows; ticker: its lag
SCENARIOS = ("bus", "peers", "scale", "http", "memory", "ticker")
#: the longest wait for other processes to calm down before a scenario
QUIET_WAIT_S = 60.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000, help="messages per bus scenario (default 20000)")
    parser.add_argument(
        "--peer-messages", type=int, default=10_000, help="messages per procrastinate and Celery run (default 10000)"
    )
    parser.add_argument("--seconds", type=int, default=15, help="measured seconds per HTTP run (default 15)")
    parser.add_argument(
        "--ticker-minutes",
        type=float,
        default=2.0,
        help="minutes of the ticker run (default 2)",
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each measurement; the fastest is reported (default 2)"
    )
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {', '.join(SCENARIOS)} (default all)"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the report")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds through every `finally`, so each child and server is stopped
    raise SystemExit(128 + signum)


def relative(text: str) -> str:
    """RESULTS.md is committed: no path of this machine goes into it."""
    return text.replace(f"{ROOT}/", "").replace(tempfile.gettempdir(), "<tmp>")


def attempt(results: Results, name: str, scenario: Callable[[], None]) -> None:
    """Run one scenario; a failure is reported in RESULTS.md and does not lose the other figures."""
    waited, busy = wait_for_quiet(QUIET_WAIT_S)
    after = f", after waiting {waited:.0f} s for it to calm down" if waited >= 1 else ""
    results.quiet[name] = f"other processes kept {busy:.2f} cores busy{after}"
    say(f"{name}: {results.quiet[name]}")
    try:
        scenario()
    except BenchError as err:
        results.errors[name] = relative(str(err))
    except Exception:  # noqa: BLE001 - any failure of one scenario must still leave a report of the others
        results.errors[name] = relative(traceback.format_exc())
    if name in results.errors:
        say(f"{name} failed: {results.errors[name].strip().splitlines()[-1]}")


def run(args: argparse.Namespace, root: Path, results: Results) -> None:
    chosen = args.only.split(",")

    series = drains.catalogue(results.plans)
    drain_keys = drains.wanted(chosen, series)

    def drain_scenarios() -> None:
        counts = (args.messages, args.peer_messages)
        drains.run_all(series, drain_keys, root, counts, args.repeat, results.drains, results.errors)

    def http_scenario() -> None:
        results.web = web.http_load(root, args.seconds, args.repeat)

    def memory_scenario() -> None:
        say("(d) idle memory")
        results.memory = memory.idle_memory(root)

    def ticker_scenario() -> None:
        say(f"(t) ticker: {ticker.EVERY_MINUTE:,} minutely + {ticker.EVERY_SECOND:,} per-second schedules")
        results.ticker = ticker.run(args.ticker_minutes, root)

    if drain_keys:
        attempt(results, "(a)/(b)/(p)/(q)/(s) drains", drain_scenarios)
    scenarios = {
        "http": ("(c) HTTP", http_scenario),
        "memory": ("(d) idle memory", memory_scenario),
        "ticker": ("(t) ticker", ticker_scenario),
    }
    for name in SCENARIOS:
        if name in chosen and name in scenarios:
            attempt(results, *scenarios[name])
    results.errors = {name: relative(text) for name, text in results.errors.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    results = Results(
        started=dt.datetime.now(dt.UTC),
        machine="",
        software=machine.software_line(),
        load_before=machine.load_average(),
        costs=machine.costs_line(),
        messages=args.messages,
        peer_messages=args.peer_messages,
        seconds=args.seconds,
        repeat=args.repeat,
        ticker_minutes=args.ticker_minutes,
    )
    began = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    try:
        run(args, root, results)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results.elapsed_s = time.perf_counter() - began
    results.machine = machine.machine_line(versions_seen)
    args.output.write_text(render(results))
    say(f"wrote {args.output}")
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
