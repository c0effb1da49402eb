"""The rule store: rules (contracts/rules.py) as rows of the ``rules`` table, and their firings.

Every write (the API, the bus commands, the catalog sync) goes through ``_write``: the rule's own
checks (bus/rule_check.py) first, then, in one transaction holding the rules' advisory lock, the
checks against the enabled rules (cycles, chain depth) and the write. So two writes at once cannot
together close a cycle.

A rule from the catalog (source ``catalog``) is the catalog's: the API and the bus commands may not
change or delete it (``RuleOwned``, the API's 409); change the catalog instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from bus import db, outbound, rule_check, settings
from bus.queries import load
from contracts.rules import RuleSpec

SQL = load("rules")
#: the advisory lock of rule writes ("RULE")
LOCK = 0x52554C45
#: firings shown with each rule
LAST_FIRINGS = 5
API, CATALOG = "api", "catalog"


class RuleOwned(Exception):
    """The rule comes from the catalog: only the catalog changes it."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"rule {name!r} is defined in the catalog (CATALOG_DIR, rules:): change or remove it there; "
            "the API and the rule.* commands do not change catalog rules"
        )
        self.name = name


def to_spec(row: dict[str, Any]) -> RuleSpec:
    return msgspec.convert(
        {"name": row["name"], "when": row["when"], "then": row["then"], "enabled": row["enabled"]}, RuleSpec
    )


def upsert(conn: psycopg.Connection, spec: RuleSpec, source: str = API) -> dict[str, Any]:
    """Create or replace ``spec`` as it is (checks are the caller's); the row."""
    row = conn.execute(SQL["upsert"], _params(spec, source)).fetchone()
    assert row is not None
    return row


def _unset_dropped(struct: msgspec.Struct) -> dict[str, Any]:
    """A part of a rule as stored and shown: the fields it sets (the command inside it as written)."""
    return {
        name: _unset_dropped(value) if isinstance(value, msgspec.Struct) else msgspec.to_builtins(value)
        for name in struct.__struct_fields__
        if (value := getattr(struct, name)) is not None
    }


def _params(spec: RuleSpec, source: str) -> dict[str, Any]:
    return {
        "name": spec.name,
        "when": Jsonb(_unset_dropped(spec.when)),
        "then": Jsonb(_unset_dropped(spec.then)),
        "enabled": spec.enabled,
        "source": source,
    }


def get(name: str) -> RuleSpec | None:
    with db.pool().connection() as conn:
        row = conn.execute(SQL["get"], {"name": name}).fetchone()
    return None if row is None else to_spec(row)


def get_row(name: str) -> dict[str, Any] | None:
    with db.pool().connection() as conn:
        return conn.execute(SQL["get"], {"name": name}).fetchone()


def enabled() -> list[dict[str, Any]]:
    """The enabled rules' rows (the rule processor reads them for every event: a rule written a
    moment before a job ends applies to it)."""
    with db.pool().connection() as conn:
        return conn.execute(SQL["enabled"]).fetchall()


def page(after: str = "", limit: int = 100) -> list[dict[str, Any]]:
    with db.pool().connection() as conn:
        return conn.execute(SQL["list"], {"after": after, "limit": limit}).fetchall()


def _locked(conn: psycopg.Connection) -> list[RuleSpec]:
    """Take the rules' lock for this transaction; the enabled rules as they are now."""
    conn.execute(SQL["lock"], {"key": LOCK})
    return [to_spec(r) for r in conn.execute(SQL["enabled"]).fetchall()]


def _write(spec: RuleSpec, *, create_only: bool) -> dict[str, Any] | None:
    rule_check.check(spec)
    with db.pool().connection() as conn, conn.transaction():
        enabled_now = _locked(conn)
        current = conn.execute(SQL["get"], {"name": spec.name}).fetchone()
        if current is not None and create_only:
            return None
        if current is not None and current["source"] == CATALOG:
            raise RuleOwned(spec.name)
        rule_check.check_graph(spec, enabled_now, settings.get().max_chain_depth)
        return upsert(conn, spec, API)


def create(spec: RuleSpec) -> dict[str, Any] | None:
    """Create a new rule; None when the name is taken (nothing is replaced). Raises ``BadRule``."""
    return _write(spec, create_only=True)


def set_rule(spec: RuleSpec) -> dict[str, Any]:
    """Create or atomically replace (``rule.set``). Raises ``BadRule`` or ``RuleOwned``."""
    row = _write(spec, create_only=False)
    assert row is not None
    return row


def patch(name: str, changes: dict[str, Any]) -> dict[str, Any] | None:
    """Apply the given fields to the rule ``name``, checked as a whole; None: no such rule."""
    current = get_row(name)
    if current is None:
        return None
    if current["source"] == CATALOG:
        raise RuleOwned(name)
    merged = msgspec.convert({**msgspec.to_builtins(to_spec(current)), **changes, "name": name}, RuleSpec)
    rule_check.check(merged)
    with db.pool().connection() as conn, conn.transaction():
        enabled_now = _locked(conn)
        again = conn.execute(SQL["get"], {"name": name}).fetchone()
        if again is None:
            return None
        if again["source"] == CATALOG:
            raise RuleOwned(name)
        if again["updated_at"] != current["updated_at"]:  # changed meanwhile: apply the change to that
            merged = msgspec.convert({**msgspec.to_builtins(to_spec(again)), **changes, "name": name}, RuleSpec)
            rule_check.check(merged)
        rule_check.check_graph(merged, enabled_now, settings.get().max_chain_depth)
        return upsert(conn, merged, API)


def delete(name: str) -> bool:
    """Delete an API rule; False when there is none. Raises ``RuleOwned`` for a catalog rule."""
    with db.pool().connection() as conn, conn.transaction():
        conn.execute(SQL["lock"], {"key": LOCK})
        current = conn.execute(SQL["get"], {"name": name}).fetchone()
        if current is None:
            return False
        if current["source"] == CATALOG:
            raise RuleOwned(name)
        return conn.execute(SQL["delete"], {"name": name}).fetchone() is not None


class CatalogRuleError(ValueError):
    """A catalog rule that may not be written: the sync changes nothing."""

    def __init__(self, file: str, name: str, err: rule_check.BadRule) -> None:
        super().__init__(f"{file}: rules.{name}: {err.message} (at {err.path})")
        self.file, self.name, self.path, self.message = file, name, err.path, err.message


def sync_catalog(rules: Iterable[tuple[RuleSpec, str]]) -> tuple[list[str], list[str]]:
    """Make the catalog's rules (each with its file) the rules of source ``catalog``, in one
    transaction: new and changed ones written (a rule of the API by the same name is taken over),
    those no longer in the catalog deleted. (written, deleted) names. A rule that fails its checks
    raises ``CatalogRuleError`` and nothing changes."""
    wanted = list(rules)
    for spec, file in wanted:
        try:
            rule_check.check(spec)
        except rule_check.BadRule as err:
            raise CatalogRuleError(file, spec.name, err) from None
    names = {spec.name for spec, _ in wanted}
    with db.pool().connection() as conn, conn.transaction():
        conn.execute(SQL["lock"], {"key": LOCK})
        rows = {r["name"]: r for r in conn.execute(SQL["all"]).fetchall()}
        kept = [to_spec(r) for n, r in rows.items() if r["enabled"] and n not in names and r["source"] == API]
        catalog_enabled = [spec for spec, _ in wanted if spec.enabled]
        for spec, file in wanted:
            others = kept + [other for other in catalog_enabled if other.name != spec.name]
            try:
                rule_check.check_graph(spec, others, settings.get().max_chain_depth)
            except rule_check.BadRule as err:
                raise CatalogRuleError(file, spec.name, err) from None
        written = []
        for spec, _ in wanted:
            row = rows.get(spec.name)
            if row is None or row["source"] != CATALOG or to_spec(row) != spec:
                upsert(conn, spec, CATALOG)
                written.append(spec.name)
        gone = [n for n, r in rows.items() if r["source"] == CATALOG and n not in names]
        deleted = [r["name"] for r in conn.execute(SQL["delete_many"], {"names": gone}).fetchall()] if gone else []
    return written, deleted


# ---- firings ---------------------------------------------------------------------------------


def record_firing(
    conn: psycopg.Connection,
    *,
    rule: str,
    event_id: str,
    job_id: str,
    outcome: str,
    follow_up_id: str | None = None,
    reason: str | None = None,
) -> bool:
    """Record what a rule did about an event, in the caller's transaction; False when it was recorded before."""
    params = {
        "rule": rule,
        "event_id": event_id,
        "job_id": job_id,
        "follow_up_id": follow_up_id,
        "outcome": outcome,
        "reason": reason,
    }
    return conn.execute(SQL["record_firing"], params).fetchone() is not None


def last_firings(names: list[str], per_rule: int = LAST_FIRINGS) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    if not names:
        return found
    with db.pool().connection() as conn:
        for row in conn.execute(SQL["last_firings"], {"names": names, "per_rule": per_rule}).fetchall():
            found[row["rule"]].append(
                {k: row[k] for k in ("event_id", "job_id", "follow_up_id", "outcome", "reason", "fired_at")}
            )
    return found


# ---- what the API shows ----------------------------------------------------------------------


def view(row: dict[str, Any], firings: list[dict[str, Any]]) -> dict[str, Any]:
    """A rule as the API and the dashboard show it: a notification's webhook redacted (a Slack
    webhook URL is a secret), its newest firings."""
    then = dict(row["then"])
    notify = then.get("notify")
    if notify and notify.get("slack"):
        then["notify"] = {**notify, "slack": outbound.redacted(notify["slack"])}
    return {
        "name": row["name"],
        "when": row["when"],
        "then": then,
        "enabled": row["enabled"],
        "source": row["source"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "last_firings": firings,
    }
