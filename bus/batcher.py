"""Group commit in the event loop: the calls of one turn of the loop, written as one batch.

Each caller awaits its own answer; the first caller of a turn schedules the flush, which takes
whatever has arrived by then. While a batch is being written the next one gathers, so under load
batches grow by themselves and at rest a lone call waits for nothing but its own write.
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
    def __init__(self, write: Callable[[list[Item]], Awaitable[list[Answer]]]) -> None:
        #: writes a batch; answers in the same order; an exception fails every call of the batch
        self.write = write
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
                try:
                    answers = await self.write([item for item, _ in batch])
                except Exception as err:  # noqa: BLE001 - each caller gets the failure, as if it had written alone
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(err)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self._flush_task = None
