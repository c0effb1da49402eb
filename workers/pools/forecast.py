"""The ``forecast`` pool: forecasts and anomaly scores, locally (statsforecast) or on SageMaker.

Only this pool imports the forecasting libraries. Once a worker process has booted, a
background thread spawns and warms up the processes that fit the models, so the first job does
not pay for it (and importing this module starts nothing).
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq

from contracts import forecast
from workers.actors import JobContext, handles
from workers.forecast import jobs, local
from workers.worker_broker import setup


class WarmUp(dramatiq.Middleware):
    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.Thread(target=local.warm_up, name="forecast-warm-up", daemon=True).start()


setup().add_middleware(WarmUp())


# notify_shutdown: a worker stopping raises Shutdown in the handler, so SageMaker endpoints
# are deleted by its `finally` instead of being left running
@handles(forecast.Forecast, notify_shutdown=True)
def forecast_series(command: forecast.Forecast, job: JobContext) -> dict[str, Any] | None:
    if command.backend == "sagemaker":
        from workers.forecast import sagemaker

        return sagemaker.run_forecast(command, job)
    return jobs.run_forecast(command, job)


@handles(forecast.Anomalies, notify_shutdown=True)
def anomalies(command: forecast.Anomalies, job: JobContext) -> dict[str, Any] | None:
    if command.backend == "sagemaker":
        from workers.forecast import sagemaker

        return sagemaker.run_anomalies(command, job)
    return jobs.run_anomalies(command, job)
