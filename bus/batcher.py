"""Group commit in the event loop: the calls of one turn of the loop, written as one batch.

Each caller awaits its own answer; the first caller of a turn schedules the flush, which takes
whatever has arrived by then. While a batch is being written the next one gathers, so under load
batches grow by themselves and at rest a lone call waits for nothing but its own write.

One call's bad item never fails the others of its batch: a failure the caller marks as an
item's (``isolate``) splits the batch until the offending items are alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")

#: the most calls written in one batch
MAX_BATCH = 256


class Batcher(Generic[Item, Answer]):
    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[list[Answer]]],
        *,
        isolate: Callable[[Exception], bool] | None = None,
    ) -> None:
        #: writes a batch; answers in the same order; an exception fails every call of the batch
        self.write = write
        #: which failures are some item's fault rather than the batch's (a value the database
        #: refuses): such a batch is split in halves and each written again, down to the single
        #: item, so only the offending calls fail and the others of their batch are written
        self.isolate = isolate
        self._waiting: list[tuple[Item, asyncio.Future[Answer]]] = []
        #: the flush under way; held here because the loop keeps only a weak reference to a task
        self._flush_task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flush_task is None:
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._write(batch)
        finally:
            self._flush_task = None

    async def _write(self, batch: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
        try:
            answers = await self.write([item for item, _ in batch])
        except Exception as err:  # noqa: BLE001 - each caller gets the failure, as if it had written alone
            if len(batch) > 1 and self.isolate is not None and self.isolate(err):
                # bisecting costs about 2 log2(n) writes per bad item, and nothing when all are good
                half = len(batch) // 2
                await self._write(batch[:half])
                await self._write(batch[half:])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)
