"""The demo data set of the local run: what the README's examples read, loaded once.

- the pipelines catalog's tables (``pipelines.setup`` with its initial rows) and 456 sales lines of
  2024-01-01 .. 2024-05-31 in ``retail.sales``, so ``pipelines.run`` has something to aggregate;
- ``demo.store_sales(store, day, amount)``: two stores' daily takings over 120 days, with a weekly
  pattern, for the forecast example's SQL source;
- the original accuracy service's test predictions in ``results`` (two models), so
  ``metrics.compute`` and ``GET /results/<model>`` answer as the README prints.

Every value is computed, not random: two fresh runs load the same rows. Each part is loaded once,
recorded in ``demo.loaded``, and never over a user's data: a part whose table already has rows is
skipped (and recorded as such). ``DEMO_DATA=0`` turns it off; it is on by default only for the
embedded database (``DEMO_DATA=1`` loads it into a database of ``DATABASE_URL`` too).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import psycopg

#: the articles of catalog/retail.yaml's initial rows, with their prices
ARTICLES = (("A-100", 2.40), ("A-200", 2.90), ("B-100", 4.10))
SALES_FROM, SALES_DAYS = dt.date(2024, 1, 1), 152  # to 2024-05-31
#: the README's metrics example; the newest row of the first model scores 3 of 4 (accuracy 0.75)
MODELS = ("6d6a8224-de68-4603-b2db-63e01d34f020", "30dc8119-afe0-4dbd-9555-eb36fa408fd4")

_MARKER = """
CREATE SCHEMA IF NOT EXISTS demo;
CREATE TABLE IF NOT EXISTS demo.loaded (part text PRIMARY KEY, loaded_at timestamptz NOT NULL DEFAULT now(),
                                        outcome text NOT NULL)
"""

_STORE_SALES = """
CREATE TABLE IF NOT EXISTS demo.store_sales (
    store  text NOT NULL,
    day    date NOT NULL,
    amount numeric(12, 2) NOT NULL,
    PRIMARY KEY (store, day)
)
"""
# a base per store, a slow trend and a weekly shape (quiet Tuesdays, busy Saturdays)
_STORE_SALES_ROWS = """
INSERT INTO demo.store_sales (store, day, amount)
SELECT s.store, DATE '2024-01-01' + d,
       round(((s.base + 0.5 * d)
              * (ARRAY[1.0, 0.9, 0.95, 1.0, 1.2, 1.5, 1.3])[extract(isodow FROM DATE '2024-01-01' + d)])::numeric, 2)
  FROM (VALUES ('north', 200.0), ('south', 140.0)) AS s(store, base), generate_series(0, 119) AS d
"""

_RESULTS_ROWS = """
INSERT INTO results (model_id, y_true, y_pred, timestamp) VALUES
    ('6d6a8224-de68-4603-b2db-63e01d34f020', '[0, 1, 1, 0]', '[0, 1, 1, 0]', '2026-11-21 23:00:00+00'),
    ('6d6a8224-de68-4603-b2db-63e01d34f020', '[1, 0, 1, 1]', '[1, 0, 0, 1]', '2026-11-21 23:59:58+00'),
    ('30dc8119-afe0-4dbd-9555-eb36fa408fd4', '[1, 1, 0, 0]', '[1, 0, 0, 1]', '2026-11-21 23:00:00+00'),
    ('30dc8119-afe0-4dbd-9555-eb36fa408fd4', '[0, 0, 1, 1]', '[0, 1, 1, 1]', '2026-11-21 23:59:58+00')
"""


def sales_rows() -> list[dict[str, Any]]:
    """The demo's sales lines: one per day and article, quantities cycling through 1..5."""
    rows = []
    for day in range(SALES_DAYS):
        for n, (code, price) in enumerate(ARTICLES):
            quantity = 1 + (day * 7 + n * 3) % 5
            rows.append(
                {
                    "sale_id": day * len(ARTICLES) + n + 1,
                    "article_code": code,
                    "sold_on": (SALES_FROM + dt.timedelta(days=day)).isoformat(),
                    "quantity": quantity,
                    "amount": round(quantity * price, 2),
                }
            )
    return rows


def wanted(env: dict[str, str], *, embedded: bool) -> bool:
    flag = env.get("DEMO_DATA", "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return False
    return embedded or flag in ("1", "true", "yes", "on")


def load_once(env: dict[str, str], *, embedded: bool) -> str:
    """Load what is not loaded yet; a line saying what happened."""
    if not wanted(env, embedded=embedded):
        return "demo data: off (DEMO_DATA)"
    url = env["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_MARKER)
        done = {part for (part,) in conn.execute("SELECT part FROM demo.loaded")}
    outcomes = []
    for part, load in (("catalog", _catalog), ("store_sales", _store_sales), ("results", _results)):
        if part in done:
            continue
        outcome = load(url, env)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO demo.loaded (part, outcome) VALUES (%s, %s)", (part, outcome))
        outcomes.append(f"{part} {outcome}")
    return "demo data: " + ("; ".join(outcomes) if outcomes else "loaded before (DEMO_DATA=0 turns it off)")


def _count(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def _catalog(url: str, env: dict[str, str]) -> str:
    # the pipelines pool's own setup and ingest, on this process's settings
    for name in ("DATABASE_URL", "CATALOG_DIR"):
        if env.get(name):
            os.environ[name] = env[name]
    from bus import settings

    settings.get.cache_clear()
    from pipelines_catalog import catalog as catalogs
    from workers.pipelines import tables

    catalog = catalogs.load(settings.get().catalog_dir)
    if "retail.sales" not in catalog.tables:
        return "skipped (the catalog has no retail.sales)"
    tables.setup(catalog, list(catalog.tables.values()), initial_data=True, drop=False)
    with psycopg.connect(url) as conn:
        if _count(conn, "SELECT count(*) FROM retail.sales") > 0:
            return "skipped (retail.sales has rows)"
    tables.ingest_rows(catalog.table("retail.sales"), sales_rows())
    from bus import db

    db.close()
    return f"loaded ({len(sales_rows())} sales lines)"


def _store_sales(url: str, env: dict[str, str]) -> str:
    with psycopg.connect(url) as conn:
        conn.execute(_STORE_SALES)
        if _count(conn, "SELECT count(*) FROM demo.store_sales") > 0:
            return "skipped (demo.store_sales has rows)"
        conn.execute(_STORE_SALES_ROWS)
    return "loaded"


def _results(url: str, env: dict[str, str]) -> str:
    with psycopg.connect(url) as conn:
        if _count(conn, "SELECT count(*) FROM results WHERE model_id = ANY(%s::uuid[])", (list(MODELS),)) > 0:
            return "skipped (results has rows of the demo models)"
        conn.execute(_RESULTS_ROWS)
    return "loaded"
