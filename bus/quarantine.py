"""The Redis broker our processes use: Dramatiq's, with a consumer that quarantines poison messages.

Dramatiq's Redis consumer fetches a batch of message bodies and decodes them one at a time. A body
that does not decode raises out of the consumer: Dramatiq restarts it, empty, and the rest of the
batch stays in the worker's unacked set, never run and never requeued while the worker lives (and
after a restart the poison comes back with them). Other bad envelopes that do decode crash later:
an ``options`` that is not an object, a ``queue_name`` this worker does not consume (the worker
thread dies looking up its consumer), a ``message_id`` that is not a string, no
``options.redis_message_id`` (the acknowledgement fails and the message runs again after a
restart).

This consumer checks each body before Dramatiq sees it. One that Dramatiq could not run safely is
moved to the queue's dead-letter queue with the reason (bus/broker_adapter.quarantine,
bus/rejections.py), and the consumer goes on with the rest of the batch. A command that does not
match its contract inside a good envelope is not this module's business: its actor fails the job
``dead`` (workers/actors.py).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import msgspec
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, q_name
from dramatiq.errors import ActorNotFound, ConnectionClosed, DecodeError
from dramatiq.message import Message

from bus import broker_adapter, rejections
from bus.acks import Acks

log = logging.getLogger(__name__)


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """What Dramatiq's ``Message`` needs, typed: its decoder checks only that the names fit."""

    queue_name: str
    actor_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    message_id: str = ""
    message_timestamp: int | float = 0


_envelope = msgspec.json.Decoder(Envelope)


class Poison(Exception):
    """A message body this worker cannot run; the text is the reason recorded with it."""


class QuarantiningRedisBroker(RedisBroker):
    @property
    def consumer_class(self):  # type: ignore[no-untyped-def]
        return QuarantiningConsumer


class QuarantiningConsumer(_RedisConsumer):
    """Dramatiq 2.2.1's ``_RedisConsumer``, with ``Message.decode`` replaced by ``admit``, the
    acknowledgements sent a batch per call (bus/acks.py) and the shutdown requeue putting messages
    back at the head of the queue."""

    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self.acks = Acks(broker, queue_name)

    def ack(self, message: MessageProxy) -> None:
        # on this consumer's queue (self.acks'), not message.queue_name: a delayed message is
        # acknowledged on the delay queue it was fetched from, as Dramatiq's own ack does
        self.acks.add(message.options["redis_message_id"])
        self.queued_message_ids.discard(message.message_id)

    def close(self) -> None:
        self.acks.close()
        super().close()

    def __next__(self) -> MessageProxy | None:
        # Dramatiq's loop (brokers/redis.py, _RedisConsumer.__next__), but a bad body is
        # quarantined and the loop goes on to the next one of the batch
        try:
            while True:
                try:
                    data = self.message_cache.pop(0)
                except IndexError:
                    messages = []
                    if self.outstanding_message_count < self.prefetch:
                        self.message_cache = messages = self.broker.do_fetch(
                            self.queue_name,
                            self.prefetch - self.outstanding_message_count,
                        )
                    if not messages:
                        self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                        time.sleep(backoff_ms / 1000)
                        return None
                    continue
                if data is None:  # an id without a body (see Dramatiq's #266); Dramatiq skips it too
                    self.logger.warning("Found a message id without a body on queue %r.", self.queue_name)
                    continue
                self.misses = 0
                try:
                    message = self.admit(data)
                except Poison as why:
                    self.reject(data, str(why))
                    continue
                self.queued_message_ids.add(message.message_id)
                return MessageProxy(message)
        except redis.ConnectionError as e:
            raise ConnectionClosed(e) from None

    def admit(self, data: bytes) -> Message:
        """The message, or Poison saying why this worker cannot run it."""
        try:
            envelope = _envelope.decode(data)
        except msgspec.DecodeError as err:
            raise Poison(_why(err, data)) from None
        if not isinstance(envelope.options.get("redis_message_id"), str):
            raise Poison("options.redis_message_id is missing: the message could not be acknowledged")
        if envelope.queue_name != self.queue_name:
            raise Poison(f"queue_name is {envelope.queue_name!r} but the message was on queue {self.queue_name!r}")
        try:
            actor = self.broker.get_actor(envelope.actor_name)
        except ActorNotFound:
            raise Poison(
                f"no actor {envelope.actor_name!r} on this worker's queue {q_name(self.queue_name)!r}"
            ) from None
        if actor.queue_name != q_name(self.queue_name):
            raise Poison(f"actor {envelope.actor_name!r} listens on queue {actor.queue_name!r}")
        try:
            return Message.decode(data)  # Dramatiq's own decoding, now known to succeed
        except DecodeError:
            raise Poison("Dramatiq's decoder refused it") from None

    def reject(self, data: bytes, reason: str) -> None:
        found = rejections.record(q_name(self.queue_name), data, reason)
        redis_id = _redis_id_of(data)
        moved = broker_adapter.quarantine(self.broker, self.queue_name, data, found, redis_id)
        if moved is None:
            # requeued meanwhile (this worker was taken for dead): a consumer will meet it again
            log.warning("rejected message on %r was no longer held by this worker: %s", self.queue_name, reason)
            return
        log.error("rejected message %s on %r (dead-lettered): %s", moved, self.queue_name, found.reason)

    def requeue(self, messages: Any) -> None:
        ids = [message.options["redis_message_id"] for message in messages]
        self.logger.debug("Re-enqueueing %r at the head of queue %r.", ids, self.queue_name)
        broker_adapter.requeue_at_head(self.broker, self.queue_name, ids)


def _why(err: msgspec.DecodeError, data: bytes) -> str:
    """msgspec's reason (it names the field, never quotes the body), with the rule it broke."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8 text (byte {bad.start})"
    reason = str(err)
    if reason.startswith("Object contains unknown field"):
        reason += ": a message has exactly Dramatiq's seven fields (our metadata goes in options)"
    return reason


def _redis_id_of(data: bytes) -> str | None:
    """The Redis id a body names for itself, if it decodes that far."""
    try:
        found = json.loads(data)["options"]["redis_message_id"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return found if isinstance(found, str) else None
