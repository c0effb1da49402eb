"""The catalog's ``rules:`` kept in the ``rules`` table (source ``catalog``).

Each rule processor syncs them when it starts and again when the catalog's files change (looked at
at most every ``CHECK_S`` while events arrive): the rule processors are what applies rules, so the
catalog they read is the one that counts, and a catalog edited in place takes effect without a
restart. A sync writes what changed and deletes the catalog rules no longer in it, in one
transaction under the rules' lock (so processes syncing at once agree). A catalog that cannot be
read, or a rule in it that fails its checks, is logged once (file, rule, field) and changes nothing:
the rules stay as they were.
"""

from __future__ import annotations

import logging
import threading
import time

from bus import rule_store, settings
from bus.jobstore import unavailable
from pipelines_catalog import catalog

log = logging.getLogger(__name__)
CHECK_S = 5.0


class CatalogRules:
    def __init__(self, root: str | None = None) -> None:
        self.root = root or settings.get().catalog_dir
        self._synced: str | None = None
        self._refused: str | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Sync if the catalog changed since the last sync (or that one failed)."""
        with self._lock:
            self._checked = time.monotonic()
            try:
                current = catalog.current(self.root)
            except catalog.CatalogError as err:
                self._once(f"error:{err}", "catalog rules not synced: %s", err)
                return
            if current.version == self._synced:
                return
            try:
                written, deleted = rule_store.sync_catalog((r.spec, r.file) for r in current.rules.values())
            except rule_store.CatalogRuleError as err:
                self._once(current.version, "catalog rules not synced, the rules stay as they were: %s", err)
                return
            except Exception as err:  # events go on being handled with the rules there are
                if unavailable(err):
                    log.warning("catalog rules not synced now (%s): tried again later", type(err).__name__)
                else:
                    log.exception("catalog rules not synced (tried again later)")
                return
            self._synced = current.version
            if written or deleted:
                log.info(
                    "catalog rules synced: %d written %s, %d deleted %s", len(written), written, len(deleted), deleted
                )

    def maybe_sync(self) -> None:
        if time.monotonic() - self._checked >= CHECK_S:
            self.sync()

    def _once(self, key: str, message: str, err: Exception) -> None:
        if self._refused != key:
            self._refused = key
            log.error(message, err)
