"""Group commit of job transitions: the starts and finishes of all of a worker process's
threads, written a batch at a time.

Every worker thread would otherwise make its own round trip and its own commit (and, for
a finish, its own wait for the disk) per job. Here a thread hands its transition to one
writer thread and waits for it: the writer takes what has arrived, writes each kind in
one statement and one commit, and wakes the waiters. A finish is durable before its
waiter returns; a failed batch fails each of its waiters, as if it had written alone.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, NamedTuple

from bus import db, settings
from bus.queries import load

log = logging.getLogger(__name__)
SQL = load("jobs")
#: the most transitions of one kind in one statement
MAX_BATCH = 256


class Started(NamedTuple):
    """What a start recorded: the attempt this delivery runs, or None when it must not run the job."""

    attempt: int | None
    #: the job's status: ``running`` once started here, else what kept it from starting (a job
    #: over, or ``running`` under another attempt)
    status: str


class _Item:
    __slots__ = ("future", "kind", "params")

    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        self.kind = kind
        self.params = params
        self.future: Future[Any] = Future()


class GroupCommit:
    def __init__(self, on_finished: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None) -> None:
        #: turns the rows of each finished batch into what ``finish`` returns, by job id (the
        #: job store builds its Job objects and mirrors them to Redis there)
        self.on_finished = on_finished
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _submit(self, kind: str, params: dict[str, Any]) -> Any:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="job-group-commit", daemon=True)
                    self._thread.start()
        item = _Item(kind, params)
        self._queue.put(item)
        return item.future.result()

    def start(self, params: dict[str, Any]) -> Started:
        """The attempt this delivery runs, or why it runs none (the job's status)."""
        return self._submit("start", params)

    def finish(self, params: dict[str, Any]) -> Any:
        """The finished job (its row, or what ``on_finished`` made of it), or None when it was not running."""
        return self._submit("finish", params)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # whatever else has arrived meanwhile joins this batch: no waiting on purpose,
            # the batch grows by itself while the previous one is being written
            while len(batch) < 2 * MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for kind in ("start", "finish"):
                items = [i for i in batch if i.kind == kind]
                while items:
                    chunk, items = _distinct(items[:MAX_BATCH]), items[MAX_BATCH:]
                    items = chunk[1] + items
                    self._write(kind, chunk[0])

    def _write(self, kind: str, items: list[_Item]) -> None:
        try:
            if kind == "start":
                rows = _start_many([i.params for i in items])
                for item in items:
                    item.future.set_result(rows.get(item.params["id"]))
            else:
                rows = _finish_many([i.params for i in items])
                done: dict[str, Any] = self.on_finished(list(rows.values())) if self.on_finished else rows
                for item in items:
                    item.future.set_result(done.get(item.params["id"]))
        except Exception as err:  # noqa: BLE001 - every waiter gets the failure, as if it had written itself
            for item in items:
                if not item.future.done():
                    item.future.set_exception(err)


def _distinct(items: list[_Item]) -> tuple[list[_Item], list[_Item]]:
    """One statement may touch a job once: a second transition of the same job waits for the next."""
    seen: set[str] = set()
    now, later = [], []
    for item in items:
        (later if item.params["id"] in seen else now).append(item)
        seen.add(item.params["id"])
    return now, later


def row_columns(rows: list[dict[str, Any]], *, hashes: bool = False) -> dict[str, list[Any]]:
    """Many ``jobstore.row_params`` as the column arrays a batched insert unnests (``start_many``,
    ``insert_accepted``)."""
    columns = {
        "ids": [r["id"] for r in rows],
        "types": [r["type"] for r in rows],
        "queues": [r["queue"] for r in rows],
        "commands": [r["command"] for r in rows],
        "options": [r["options"] for r in rows],
        "keys": [r["idempotency_key"] for r in rows],
    }
    if hashes:
        columns["hashes"] = [r["command_hash"] for r in rows]
    return columns


def _start_many(params: list[dict[str, Any]]) -> dict[str, Started]:
    columns: dict[str, Any] = row_columns(params)
    columns["continues"] = [p["continues"] for p in params]
    columns["lease_s"] = settings.get().lease_s
    # a start need not wait for the disk: a lost one leaves the previous state, which the
    # redelivered message corrects
    with db.statements(durable=False).connection() as conn:
        started = {
            r["id"]: Started(r["attempts"], "running") for r in conn.execute(SQL["start_many"], columns).fetchall()
        }
        refused = [p["id"] for p in params if p["id"] not in started]
        if refused:  # rare (redeliveries, duplicates): say why, for the log and the caller
            found = {r["id"]: r["status"] for r in conn.execute(SQL["statuses"], {"ids": refused}).fetchall()}
            # no row: another process inserted it in the same instant and runs it
            started.update({i: Started(None, found.get(i, "running")) for i in refused})
    return started


def _finish_many(params: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    columns = {
        "ids": [p["id"] for p in params],
        "attempts": [p["attempt"] for p in params],
        "statuses": [p["status"] for p in params],
        "results": [p["result"] for p in params],
        "errors": [p["error"] for p in params],
    }
    with db.statements(durable=True).connection() as conn:
        return {r["id"]: r for r in conn.execute(SQL["finish_many"], columns).fetchall()}
