"""``python -m bench.drills`` (``make drills``): run the fault drills and write ``bench/RESULTS-drills.md``.

The drills are tests (``tests/test_drills_*.py``): each kills or restarts a real process or server
and checks the jobs table afterwards; ``make test`` runs them too. Here they run alone, and every
drill's figures (``tests/drill_report.record``) become one row of the report: accepted, succeeded,
lost, duplicated (two successes), stuck (running or queued after the deadline), seconds to recover.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.machine import load_average, machine_line, software_line

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "bench" / "RESULTS-drills.md"
COLUMNS = ("accepted", "succeeded", "lost", "duplicated", "stuck", "recover_s")


def run() -> tuple[int, list[dict[str, object]]]:
    drills = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_drills_*.py"))
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as report:
        env = {**os.environ, "DRILLS_REPORT": report.name}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *drills], cwd=ROOT, env=env
        )
        rows = [json.loads(line) for line in Path(report.name).read_text().splitlines() if line.strip()]
    return done.returncode, rows


def render(status: int, rows: list[dict[str, object]], started: dt.datetime, load: str) -> str:
    lines = [
        "# Fault drills",
        "",
        f"`make drills`, {started:%Y-%m-%d %H:%M} UTC; pytest exit status {status} "
        f"({'all drills passed' if status == 0 else 'SOME DRILLS FAILED'}).",
        "",
        f"- Machine: {machine_line({})}",
        f"- Software: {software_line()}",
        f"- Load average before (1 / 5 / 15 min): {load}",
        "",
        "Each row is one drill against real processes and servers (tests/test_drills_*.py). lost: accepted "
        "jobs that never ended; duplicated: jobs with two successes; stuck: `running` or `queued` at the "
        "deadline (2 minutes after the fault ends); recover_s: from the fault to the last job's end, or as the "
        "drill says in its notes.",
        "",
        "| drill | " + " | ".join(COLUMNS) + " | notes |",
        "|---|" + "---:|" * len(COLUMNS) + "---|",
    ]
    for row in rows:
        notes = ", ".join(f"{k} {v}" for k, v in row.items() if k not in (*COLUMNS, "drill", "at"))
        cells = ["" if row.get(c) is None else str(row[c]) for c in COLUMNS]
        lines.append(f"| {row['drill']} | " + " | ".join(cells) + f" | {notes} |")
    if not rows:
        lines.append("| (no drill reported figures) |" + " |" * (len(COLUMNS) + 1))
    return "\n".join(lines) + "\n"


def main() -> int:
    started, load = dt.datetime.now(dt.UTC), load_average()
    status, rows = run()
    OUTPUT.write_text(render(status, rows, started, load))
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(rows)} drills")
    return status


if __name__ == "__main__":
    sys.exit(main())
