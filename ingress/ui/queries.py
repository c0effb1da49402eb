"""The few read-only queries only the dashboard needs (the rest it borrows from sql/queries/).

Kept beside the pages because they exist for them; values are bound parameters, as everywhere.
"""

from __future__ import annotations

#: the alert thresholds on a model: every schedule computing its metrics that carries an alert
MODEL_ALERTS = """
SELECT name, alert, alert_state, enabled FROM schedules
 WHERE command_type = 'metrics.compute' AND command->>'model_id' = %(model_id)s AND alert IS NOT NULL
 ORDER BY name
"""

#: the models with metric history, newest computation first, each with its latest computation. The
#: history grows by a row per computation forever, so the distinct models are walked through
#: metric_history_model_idx one at a time (a skip scan) instead of grouping the whole table
MODELS = """
WITH RECURSIVE models AS (
    (SELECT model_id FROM metric_history ORDER BY model_id LIMIT 1)
    UNION ALL
    SELECT (SELECT h.model_id FROM metric_history h WHERE h.model_id > m.model_id ORDER BY h.model_id LIMIT 1)
      FROM models m
     WHERE m.model_id IS NOT NULL
)
SELECT m.model_id, latest.computed_at AS last_computed_at, latest.n, latest.metrics
  FROM models m
 CROSS JOIN LATERAL (
       SELECT computed_at, n, metrics FROM metric_history h
        WHERE h.model_id = m.model_id ORDER BY computed_at DESC LIMIT 1) latest
 WHERE m.model_id IS NOT NULL
 ORDER BY latest.computed_at DESC
 LIMIT %(limit)s
"""

#: the newest computations of one model (uses metric_history_model_idx)
HISTORY = """
SELECT computed_at, job_id, schedule, n, metrics
  FROM metric_history
 WHERE model_id = %(model_id)s
 ORDER BY computed_at DESC
 LIMIT %(limit)s
"""

#: an estimate of a table's rows, for a table too large to count in time
ESTIMATE = "SELECT greatest(reltuples, 0)::bigint AS estimate FROM pg_class WHERE oid = to_regclass(%(name)s)"

#: the newest jobs the ticker emitted for one schedule: an ordered walk of jobs_schedule_created_idx
#: (partial on `options->>'schedule' IS NOT NULL`, which the equality implies) that stops at the limit
SCHEDULE_RUNS = """
SELECT id, status, attempts, options->>'scheduled_at' AS slot, created_at, started_at, finished_at
  FROM jobs
 WHERE options->>'schedule' = %(name)s
 ORDER BY created_at DESC
 LIMIT %(limit)s
"""

#: the newest views of the whole organisation's workspace tree (uses jobs_type_created_idx); the page
#: shows the newest that succeeded and says when a newer one is still on its way
WORKSPACE_VIEWS = """
SELECT id, status, result, created_at, finished_at FROM jobs
 WHERE type = 'gooddata.workspace.view' AND command->>'workspace_id' IS NULL
   AND (status = 'succeeded' OR created_at > %(since)s)
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s
"""

#: what each listed forecast job produced, per job (uses the primary key of forecast_series)
FORECAST_SUMMARIES = """
SELECT job_id, count(*) AS series, string_agg(DISTINCT model, ', ') AS models,
       string_agg(DISTINCT backend, ', ') AS backends, sum(anomalies) AS anomalies
  FROM forecast_series
 WHERE job_id = ANY(%(job_ids)s)
 GROUP BY job_id
"""
