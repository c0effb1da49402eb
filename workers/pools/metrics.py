"""The ``metrics`` pool: model-accuracy metrics and their alert webhooks."""

from __future__ import annotations

from typing import Any

from bus import metric_store as store
from bus.jobstore import shared
from bus.submission import submit
from contracts import metrics
from workers import worker_broker
from workers.actors import JobContext, handles
from workers.metrics import alerts, compute, data

worker_broker.setup()


@handles(metrics.Compute)
def compute_metrics(command: metrics.Compute, job: JobContext) -> dict[str, Any]:
    predictions = data.load_predictions(command.model_id, command.window)
    values = compute.compute(predictions, list(command.metrics))
    computed_at = store.record(
        job_id=job.id,
        model_id=command.model_id,
        schedule=job.schedule,
        n=predictions.n,
        rows=predictions.rows,
        metrics=values,
    )
    latest = {
        "model_id": str(command.model_id),
        "accuracy": values.get("accuracy"),
        "computed_at": computed_at.isoformat(),
        "n": predictions.n,
        "rows": predictions.rows,
        "metrics": values,
        "job_id": job.id,
    }
    store.publish_latest(latest)
    if job.schedule is not None:
        delivery = alerts.evaluate(job_id=job.id, schedule=job.schedule, model_id=command.model_id, metrics=values)
        if delivery is not None:
            alert_job = submit(
                shared(),
                worker_broker.setup(),
                metrics.DeliverAlert(delivery_id=delivery),
                idempotency_key=f"alert-delivery:{delivery}",
            )
            latest["alert_job_id"] = alert_job.id
    return latest


@handles(metrics.DeliverAlert, max_retries=alerts.MAX_ATTEMPTS, min_backoff=2000)
def deliver_alert(command: metrics.DeliverAlert, job: JobContext) -> dict[str, Any]:
    return alerts.deliver(command, job.attempt)


__all__ = ["compute_metrics", "deliver_alert"]
