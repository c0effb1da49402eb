"""The figures of a fault drill: what was accepted and how it ended.

Every drill test calls ``record``; it prints the figures, and under ``make drills``
(``DRILLS_REPORT`` names a file) adds them as a JSON line that ``python -m bench.drills``
turns into ``bench/RESULTS-drills.md``.
"""

from __future__ import annotations

import json
import os
import time


def record(
    drill: str,
    *,
    accepted: int,
    succeeded: int,
    lost: int,
    duplicated: int,
    stuck: int,
    recover_s: float | None = None,
    **extra: float | int | str,
) -> None:
    figures = {
        "drill": drill,
        "accepted": accepted,
        "succeeded": succeeded,
        "lost": lost,
        "duplicated": duplicated,
        "stuck": stuck,
        "recover_s": None if recover_s is None else round(recover_s, 2),
        **extra,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(f"drill {drill}: " + ", ".join(f"{k} {v}" for k, v in figures.items() if k not in ("drill", "at")))
    path = os.environ.get("DRILLS_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(figures) + "\n")
