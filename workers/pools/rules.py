"""The ``rules`` pool: the rule processor (``dramatiq workers.pools.rules --queues events``).

One plain actor per event name (``job.succeeded``, ``job.failed``, ``job.dead``,
``job.cancelled``) on the ``events`` queue (contracts/event.py). Handling an event is not a job:
it has no row in ``jobs`` and makes no event of its own. For each event the enabled rules are read
(one small query, so a rule written a moment before a job ends applies to its event; an event
older than a rule does not fire it), matched
(workers/rules/matching.py) and fired (workers/rules/follow_up.py). Events of ``system.notify``
jobs trigger no rule: a notification about failures can never notify about itself.

Postgres down: the event comes back after a backoff that does not use up its retries (Retries,
bus/broker.py); an event that is not one (a malformed message) is dead-lettered at once.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import msgspec

from bus import rule_store
from bus.errors import PermanentError, StoreUnavailable
from bus.jobstore import unavailable
from bus.rule_graph import NOTIFY
from contracts.event import EVENT_NAMES, EVENTS_QUEUE, JobEvent
from workers.rules import follow_up
from workers.rules.catalog_rules import CatalogRules
from workers.worker_broker import setup

log = logging.getLogger(__name__)
broker = setup()
catalog_rules = CatalogRules()
catalog_rules.sync()


def on_event(*args: Any, **kwargs: Any) -> None:
    if len(args) != 1 or kwargs:
        raise PermanentError("an event message carries exactly one argument, the event: args=[event], kwargs={}")
    try:
        event = msgspec.convert(args[0], JobEvent)
    except msgspec.ValidationError as err:
        raise PermanentError(f"not a job event: {err}") from None
    if event.type == NOTIFY:
        return
    try:
        catalog_rules.maybe_sync()
        # a rule answers the jobs that end once it exists: an event still on its way when the rule
        # was written (a backlog, a processor catching up) is older than the rule and fires nothing
        rules = [rule_store.to_spec(row) for row in rule_store.enabled() if row["created_at"] <= event.occurred_at]
        follow_up.handle(event, rules, broker)
    except Exception as err:
        if unavailable(err):
            raise StoreUnavailable(f"job store unavailable: {err.__class__.__name__}") from None
        raise


for _name in EVENT_NAMES.values():
    dramatiq.actor(
        on_event,
        actor_name=_name,
        queue_name=EVENTS_QUEUE,
        throws=(PermanentError, StoreUnavailable),
    )
