"""The broker of a worker process: the shared one (bus/broker.py) plus the middleware that
records every job transition and lists the process on the dashboard."""

from __future__ import annotations

import dramatiq

from bus import settings
from bus.broker import build
from bus.presence import Presence
from workers.lifecycle import JobLifecycle

_broker: dramatiq.Broker | None = None


def setup() -> dramatiq.Broker:
    """Build the process's broker once and make it Dramatiq's global broker."""
    global _broker
    if _broker is None:
        settings.require_database()

        # Presence after JobLifecycle: a message it skips (already over, a stale tick) is never listed as running
        _broker = build(middleware=[JobLifecycle(), Presence()])
        dramatiq.set_broker(_broker)
    return _broker
