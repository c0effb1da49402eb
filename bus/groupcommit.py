"""Group commit of job transitions: the starts and finishes of all of a worker process's
threads, written a batch at a time.

Every worker thread would otherwise make its own round trip and its own commit (and, for
a finish, its own wait for the disk) per job. Here a thread hands its transition to one
writer thread and waits for it: the writer takes what has arrived, writes each kind in
one statement and one commit, and wakes the waiters. A finish is durable before its
waiter returns; a failed batch fails each of its waiters, as if it had written alone.

What a batch costs the worker is mostly per statement, not per job (a round trip, the driver's
work around it), so the batch goes to Postgres as one JSON parameter (``start_many``,
``finish_many``), and while batches keep coming the writer keeps its two connections (durable
and fast) instead of taking them from the pool for each statement. For the same reason, under
load the writer gives a batch a moment (LINGER_S) to take in the transitions the other threads
are about to hand over: a millisecond more per transition, and several times fewer statements.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from psycopg import Connection
from psycopg.types.json import Jsonb

from bus import db, settings
from bus.queries import load

log = logging.getLogger(__name__)
SQL = load("jobs")
#: the most transitions of one kind in one statement
MAX_BATCH = 256
#: under load, how long the writer lets a batch gather before it writes it
LINGER_S = 0.001
#: the writer hands its connections back to the pool after this long without a transition
IDLE_S = 1.0


class Started(NamedTuple):
    """What a start recorded: the attempt this delivery runs, or None when it must not run the job."""

    attempt: int | None
    #: the job's status: ``running`` once started here, else what kept it from starting (a job
    #: over, or ``running`` under another attempt)
    status: str


class _Item:
    """One transition and its answer. The waiter blocks on a lock the writer releases: the cheapest
    one-shot wake-up between two threads (a Future builds a Condition per call)."""

    __slots__ = ("answered", "error", "kind", "params", "value")

    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        self.kind = kind
        self.params = params
        self.value: Any = None
        self.error: BaseException | None = None
        self.answered = threading.Lock()
        self.answered.acquire()

    def answer(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error = value, error
        self.answered.release()

    def wait(self) -> Any:
        self.answered.acquire()
        if self.error is not None:
            raise self.error
        return self.value


class GroupCommit:
    def __init__(self, on_finished: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None) -> None:
        #: turns the rows of each finished batch into what ``finish`` returns, by job id (the
        #: job store builds its Job objects and mirrors them to Redis there)
        self.on_finished = on_finished
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: the writer's connections while it is busy, by durability (only the writer thread uses them)
        self._held: dict[bool, Connection[Any]] = {}
        #: whether the last batch had company: the writer is under load
        self._busy = False

    def _submit(self, kind: str, params: dict[str, Any]) -> Any:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="job-group-commit", daemon=True)
                    self._thread.start()
        item = _Item(kind, params)
        self._queue.put(item)
        return item.wait()

    def start(self, params: dict[str, Any]) -> Started:
        """The attempt this delivery runs, or why it runs none (the job's status). ``params``: a
        ``start_many`` row (id, type, queue, command, options, idempotency_key, continues)."""
        return self._submit("start", params)

    def finish(self, params: dict[str, Any]) -> Any:
        """The finished job (its row, or what ``on_finished`` made of it), or None when it was not
        running. ``params``: a ``finish_many`` row (id, attempt, status, result, error)."""
        return self._submit("finish", params)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_S if self._held else None)
            except queue.Empty:
                self._release()
                continue
            batch = [first]
            # whatever else has arrived meanwhile joins this batch: it grows by itself while the
            # previous one is being written
            self._drain(batch)
            if self._busy and len(batch) < 2 * MAX_BATCH:
                # under load the transitions of the other threads are a moment away, and a batch
                # costs the worker mostly per statement: given LINGER_S, it takes them too. A lone
                # transition at rest waits for nothing
                time.sleep(LINGER_S)
                self._drain(batch)
            self._busy = len(batch) > 1
            for kind in ("start", "finish"):
                items = [i for i in batch if i.kind == kind]
                while items:
                    chunk, items = _distinct(items[:MAX_BATCH]), items[MAX_BATCH:]
                    items = chunk[1] + items
                    self._write(kind, chunk[0])

    def _drain(self, batch: list[_Item]) -> None:
        while len(batch) < 2 * MAX_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _connection(self, durable: bool) -> Connection[Any]:
        conn = self._held.get(durable)
        if conn is None:
            conn = self._held[durable] = db.statements(durable=durable).getconn()
        return conn

    def _release(self, durable: bool | None = None) -> None:
        """Hand the held connections (or the one of ``durable``) back to the pool, which replaces a
        broken one."""
        for kind in [durable] if durable is not None else list(self._held):
            conn = self._held.pop(kind, None)
            if conn is not None:
                db.statements(durable=kind).putconn(conn)

    def _write(self, kind: str, items: list[_Item]) -> None:
        # a start need not wait for the disk: a lost one leaves the previous state, which the
        # redelivered message corrects
        durable = kind == "finish"
        try:
            conn = self._connection(durable)
            params = [i.params for i in items]
            if kind == "start":
                answers: dict[str, Any] = _start_many(conn, params)
            else:
                rows = _finish_many(conn, params)
                answers = self.on_finished(list(rows.values())) if self.on_finished else rows
        except Exception as err:  # noqa: BLE001 - every waiter gets the failure, as if it had written itself
            self._release(durable)
            if len(items) > 1 and db.refused_value(err):
                # one job's value (a result or a command Postgres cannot hold) must not fail the
                # others of its batch: each is written alone, and only the offender fails
                for item in items:
                    self._write(kind, [item])
                return
            for item in items:
                item.answer(error=err)
            return
        for item in items:
            item.answer(answers.get(item.params["id"]))


def _distinct(items: list[_Item]) -> tuple[list[_Item], list[_Item]]:
    """One statement may touch a job once: a second transition of the same job waits for the next."""
    seen: set[str] = set()
    now, later = [], []
    for item in items:
        (later if item.params["id"] in seen else now).append(item)
        seen.add(item.params["id"])
    return now, later


def row_columns(rows: list[dict[str, Any]], *, hashes: bool = False) -> dict[str, list[Any]]:
    """Many ``jobstore.row_params`` as the column arrays a batched insert unnests (``insert_accepted``)."""
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


def _start_many(conn: Connection[Any], params: list[dict[str, Any]]) -> dict[str, Started]:
    query = {"starts": Jsonb(params), "lease_s": settings.get().lease_s}
    started = {r["id"]: Started(r["attempts"], "running") for r in conn.execute(SQL["start_many"], query).fetchall()}
    refused = [p["id"] for p in params if p["id"] not in started]
    if refused:  # rare (redeliveries, duplicates): say why, for the log and the caller
        found = {r["id"]: r["status"] for r in conn.execute(SQL["statuses"], {"ids": refused}).fetchall()}
        # no row: another process inserted it in the same instant and runs it
        started.update({i: Started(None, found.get(i, "running")) for i in refused})
    return started


def _finish_many(conn: Connection[Any], params: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in conn.execute(SQL["finish_many"], {"finishes": Jsonb(params)}).fetchall()}
