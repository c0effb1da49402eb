"""The ``forecast`` pool: forecasts and anomaly scores, locally (statsforecast) or on SageMaker.

Only this pool imports the forecasting libraries. At start a background thread spawns
and warms up the processes that fit the models, so the first job does not pay for it.
"""

from __future__ import annotations

import threading
from typing import Any

from contracts import forecast
from workers.actors import JobContext, handles
from workers.broker import setup
from workers.forecast import jobs, local

setup()


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


threading.Thread(target=local.warm_up, name="forecast-warm-up", daemon=True).start()
