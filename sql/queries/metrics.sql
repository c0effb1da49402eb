-- name: newest
SELECT id, y_true::text AS y_true, y_pred::text AS y_pred, y_score::text AS y_score
  FROM results WHERE model_id = %(model_id)s
 ORDER BY timestamp DESC, id DESC
 LIMIT %(limit)s;

-- name: since
SELECT id, y_true::text AS y_true, y_pred::text AS y_pred, y_score::text AS y_score
  FROM results WHERE model_id = %(model_id)s AND timestamp >= %(since)s
 ORDER BY timestamp DESC, id DESC;

-- name: record
INSERT INTO metric_history (job_id, model_id, schedule, n, rows, metrics)
VALUES (%(job_id)s, %(model_id)s, %(schedule)s, %(n)s, %(rows)s, %(metrics)s)
ON CONFLICT (job_id) DO UPDATE
   SET metrics = EXCLUDED.metrics, n = EXCLUDED.n, rows = EXCLUDED.rows, computed_at = now()
RETURNING computed_at;

-- name: history
SELECT computed_at, job_id, schedule, n, rows, metrics
  FROM metric_history
 WHERE model_id = %(model_id)s AND computed_at >= %(since)s
 ORDER BY computed_at DESC
 LIMIT %(limit)s;

-- name: replace_execution
-- The original service's table, written with the schedule in one transaction.
INSERT INTO metrics_executions (model_id, cron_expression) VALUES (%(model_id)s, %(cron)s)
ON CONFLICT (model_id) DO UPDATE SET cron_expression = EXCLUDED.cron_expression;

-- name: delete_execution
DELETE FROM metrics_executions WHERE model_id = %(model_id)s RETURNING id;

-- name: alert_of
SELECT alert, alert_state FROM schedules WHERE name = %(name)s;

-- name: new_delivery
INSERT INTO alert_deliveries (job_id, schedule, model_id, metric, value, threshold, direction)
VALUES (%(job_id)s, %(schedule)s, %(model_id)s, %(metric)s, %(value)s, %(threshold)s, %(direction)s)
ON CONFLICT (job_id, metric) DO NOTHING
RETURNING id;

-- name: delivery
SELECT d.*, s.alert FROM alert_deliveries d LEFT JOIN schedules s ON s.name = d.schedule WHERE d.id = %(id)s;

-- name: delivery_attempt
UPDATE alert_deliveries
   SET attempts = attempts + 1, status = %(status)s, last_error = %(error)s,
       delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() END
 WHERE id = %(id)s;
