"""The broker of a worker process: the shared one (bus/broker.py) plus the middleware that lists
the process and its running jobs (the dashboard, the reconciler). Job transitions are recorded by
the actor wrapper itself (workers/lifecycle.py), not by middleware."""

from __future__ import annotations

import dramatiq

from bus import settings
from bus.broker import build
from bus.presence import Presence

_broker: dramatiq.Broker | None = None


def setup() -> dramatiq.Broker:
    """Build the process's broker once and make it Dramatiq's global broker."""
    global _broker
    if _broker is None:
        settings.require_database()
        _broker = build(middleware=[Presence()])
        dramatiq.set_broker(_broker)
    return _broker
