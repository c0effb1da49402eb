"""Threshold alerts: fire a webhook when a metric crosses, once until it recovers.

The schedule's ``alert_state`` flips ok -> firing in the same statement that decides
to alert, so two computations finishing together cannot both alert. Delivery is a
job of its own (metrics.alert.deliver), retried with backoff and recorded in
``alert_deliveries``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from bus import db, webhooks
from bus.errors import PermanentError
from bus.schedule_store import SQL as SCHEDULES
from contracts import metrics as metric_commands
from workers.metrics.compute import headline
from workers.metrics.data import SQL

log = logging.getLogger(__name__)
#: deliveries give up after this many attempts (the job then ends dead)
MAX_ATTEMPTS = 5


def crossed(alert: dict[str, Any], value: float) -> tuple[str, float] | None:
    if alert.get("below") is not None and value < alert["below"]:
        return "below", float(alert["below"])
    if alert.get("above") is not None and value > alert["above"]:
        return "above", float(alert["above"])
    return None


def evaluate(*, job_id: str, schedule: str, model_id: uuid.UUID, metrics: dict[str, Any]) -> int | None:
    """Update the schedule's alert state; the id of a new delivery to send, or None."""
    with db.pool().connection() as conn, conn.transaction():
        row = conn.execute(SQL["alert_of"], {"name": schedule}).fetchone()
        if row is None or not row["alert"]:
            return None
        alert = row["alert"]
        value = headline(metrics, alert["metric"])
        if value is None:
            return None
        crossing = crossed(alert, value)
        state = "firing" if crossing else "ok"
        changed = conn.execute(SCHEDULES["set_alert_state"], {"name": schedule, "state": state}).fetchone()
        if crossing is None or changed is None:
            return None  # recovered, or still firing: no new alert (no storm)
        direction, threshold = crossing
        created = conn.execute(
            SQL["new_delivery"],
            {
                "job_id": job_id,
                "schedule": schedule,
                "model_id": model_id,
                "metric": alert["metric"],
                "value": value,
                "threshold": threshold,
                "direction": direction,
            },
        ).fetchone()
    return None if created is None else created["id"]


def message(delivery: dict[str, Any]) -> dict[str, Any]:
    """Slack-compatible payload (``text``), with the figures as fields for other receivers."""
    text = (
        f":warning: {delivery['metric']} of model {delivery['model_id']} is {delivery['value']:.4f}, "
        f"{delivery['direction']} the threshold {delivery['threshold']:g} (schedule {delivery['schedule']})"
    )
    return {
        "text": text,
        "model_id": str(delivery["model_id"]),
        "metric": delivery["metric"],
        "value": delivery["value"],
        "threshold": delivery["threshold"],
        "direction": delivery["direction"],
        "schedule": delivery["schedule"],
        "job_id": delivery["job_id"],
    }


def deliver(command: metric_commands.DeliverAlert, attempt: int) -> dict[str, Any]:
    with db.pool().connection() as conn:
        delivery = conn.execute(SQL["delivery"], {"id": command.delivery_id}).fetchone()
    if delivery is None:
        raise PermanentError(f"no alert delivery {command.delivery_id}")
    if delivery["status"] == "delivered":
        return {"delivery_id": command.delivery_id, "status": "delivered"}
    if not delivery["alert"]:
        raise PermanentError(f"schedule {delivery['schedule']} no longer has an alert")
    status, error = "delivered", None
    try:
        # through the outbound client: public addresses only (or OUTBOUND_ALLOW), no redirects
        webhooks.post(
            delivery["alert"]["webhook_url"], message(delivery), idempotency_key=f"alert-delivery:{command.delivery_id}"
        )
    except (webhooks.WebhookFailed, PermanentError) as err:
        final = isinstance(err, PermanentError) or attempt >= MAX_ATTEMPTS
        status, error = ("failed" if final else "pending"), str(err)
        raise err if not final or isinstance(err, PermanentError) else PermanentError(f"{err}; gave up") from None
    finally:
        with db.pool().connection() as conn:
            conn.execute(SQL["delivery_attempt"], {"id": command.delivery_id, "status": status, "error": error})
    # the webhook URL is a secret (Slack's are): never in a job result
    return {"delivery_id": command.delivery_id, "status": status, "attempts": delivery["attempts"] + 1}
