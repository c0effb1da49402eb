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

#: the models with metric history, newest computation first (one row per model)
MODELS = """
SELECT model_id, max(computed_at) AS last_computed_at, count(*) AS computations
  FROM metric_history
 GROUP BY model_id
 ORDER BY max(computed_at) DESC
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
