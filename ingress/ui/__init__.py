"""The operator dashboard under ``/ui``: server-rendered pages, a session cookie, no build step.

The API-key middleware leaves ``/ui`` to these routes: each page checks the dashboard session itself
(``ingress.ui.web.page``), the login page and the static files excepted.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ingress.ui import forecasts, gooddata, jobs, login, models, overview, pipelines, rules, schedules, submit
from ingress.ui.paths import PREFIX, is_ui_path

__all__ = ["PREFIX", "ROUTES", "is_ui_path"]


async def _to_overview(request):  # type: ignore[no-untyped-def]
    return RedirectResponse("/ui", 308)


ROUTES = [
    Route("/ui", overview.overview, methods=["GET"]),
    Route("/ui/", _to_overview, methods=["GET"]),
    Route("/ui/login", login.login_form, methods=["GET"]),
    Route("/ui/login", login.login, methods=["POST"]),
    Route("/ui/logout", login.logout, methods=["POST"]),
    Route("/ui/jobs", jobs.job_list, methods=["GET"]),
    Route("/ui/jobs/retry", jobs.retry_dead, methods=["POST"]),
    Route("/ui/jobs/{job_id}", jobs.job_detail, methods=["GET"]),
    Route("/ui/jobs/{job_id}/cancel", jobs.cancel, methods=["POST"]),
    Route("/ui/jobs/{job_id}/retry", jobs.retry, methods=["POST"]),
    Route("/ui/jobs/{job_id}/artifact", jobs.artifact, methods=["GET"]),
    Route("/ui/submit", submit.submit_form, methods=["GET"]),
    Route("/ui/submit/schema", submit.submit_schema, methods=["GET"]),
    Route("/ui/submit", submit.submit, methods=["POST"]),
    Route("/ui/schedules", schedules.schedule_list, methods=["GET"]),
    Route("/ui/schedules", schedules.create, methods=["POST"]),
    Route("/ui/schedules/{name}", schedules.schedule_page, methods=["GET"]),
    Route("/ui/schedules/{name}", schedules.edit, methods=["POST"]),
    Route("/ui/schedules/{name}/enable", schedules.enable, methods=["POST"]),
    Route("/ui/schedules/{name}/disable", schedules.disable, methods=["POST"]),
    Route("/ui/schedules/{name}/delete", schedules.delete, methods=["POST"]),
    Route("/ui/cron/describe", schedules.describe, methods=["GET"]),
    Route("/ui/rules", rules.rule_list, methods=["GET"]),
    Route("/ui/rules", rules.create, methods=["POST"]),
    Route("/ui/rules/{name}/enable", rules.enable, methods=["POST"]),
    Route("/ui/rules/{name}/disable", rules.disable, methods=["POST"]),
    Route("/ui/rules/{name}/delete", rules.delete, methods=["POST"]),
    Route("/ui/pipelines", pipelines.pipeline_list, methods=["GET"]),
    Route("/ui/gooddata", gooddata.workspace_tree, methods=["GET"]),
    Route("/ui/gooddata/refresh", gooddata.refresh_tree, methods=["POST"]),
    Route("/ui/models", models.model_list, methods=["GET"]),
    Route("/ui/models/{model_id}", models.model_page, methods=["GET"]),
    Route("/ui/models/{model_id}/data", models.model_data, methods=["GET"]),
    Route("/ui/forecasts", forecasts.forecast_list, methods=["GET"]),
    Route("/ui/forecasts/{job_id}", forecasts.forecast_page, methods=["GET"]),
    Route("/ui/forecasts/{job_id}/data", forecasts.forecast_data, methods=["GET"]),
    Mount("/ui/static", StaticFiles(directory=Path(__file__).parent / "static"), name="ui-static"),
]
