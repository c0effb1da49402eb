-- Named queries of the forecast pool and GET /v1/forecasts. Parameters are bound by psycopg.

-- name: stage_series
CREATE TEMP TABLE staged_series (LIKE forecast_series) ON COMMIT DROP;

-- name: copy_series
COPY staged_series (job_id, series_id, kind, backend, model, points, mase, smape, threshold, anomalies, selection,
                    validated_points, weights) FROM STDIN;

-- name: upsert_series
-- A redelivered job writes the same keys: the later write wins.
INSERT INTO forecast_series SELECT * FROM staged_series
ON CONFLICT (job_id, series_id) DO UPDATE
   SET kind = EXCLUDED.kind, backend = EXCLUDED.backend, model = EXCLUDED.model, points = EXCLUDED.points,
       mase = EXCLUDED.mase, smape = EXCLUDED.smape, threshold = EXCLUDED.threshold,
       anomalies = EXCLUDED.anomalies, selection = EXCLUDED.selection,
       validated_points = EXCLUDED.validated_points, weights = EXCLUDED.weights;

-- name: stage_forecasts
CREATE TEMP TABLE staged_forecasts (LIKE forecasts) ON COMMIT DROP;

-- name: copy_forecasts
COPY staged_forecasts (job_id, series_id, ts, mean, quantiles) FROM STDIN;

-- name: upsert_forecasts
INSERT INTO forecasts SELECT * FROM staged_forecasts
ON CONFLICT (job_id, series_id, ts) DO UPDATE SET mean = EXCLUDED.mean, quantiles = EXCLUDED.quantiles;

-- name: stage_anomalies
CREATE TEMP TABLE staged_anomalies (LIKE anomalies) ON COMMIT DROP;

-- name: copy_anomalies
COPY staged_anomalies (job_id, series_id, ts, value, score, is_anomaly) FROM STDIN;

-- name: upsert_anomalies
INSERT INTO anomalies SELECT * FROM staged_anomalies
ON CONFLICT (job_id, series_id, ts) DO UPDATE
   SET value = EXCLUDED.value, score = EXCLUDED.score, is_anomaly = EXCLUDED.is_anomaly;

-- name: series_page
-- GET /v1/forecasts/{job_id}: series in id order, after a cursor, optionally one series.
SELECT * FROM forecast_series
 WHERE job_id = %(job_id)s
   AND series_id > %(after)s
   AND (%(series_id)s::text IS NULL OR series_id = %(series_id)s)
 ORDER BY series_id
 LIMIT %(limit)s;

-- name: forecast_points
SELECT series_id, ts, mean, quantiles FROM forecasts
 WHERE job_id = %(job_id)s AND series_id = ANY(%(series)s)
 ORDER BY series_id, ts;

-- name: anomaly_points
SELECT series_id, ts, value, score, is_anomaly FROM anomalies
 WHERE job_id = %(job_id)s AND series_id = ANY(%(series)s) AND (is_anomaly OR NOT %(flagged_only)s)
 ORDER BY series_id, ts;

-- name: run_get
SELECT * FROM sagemaker_runs WHERE job_id = %(job_id)s;

-- name: run_start
-- A new run (the first, or the next after a failed one). Returns nothing when a live run exists.
INSERT INTO sagemaker_runs (job_id, algorithm, run, name, data_uri, phase, spec)
VALUES (%(job_id)s, %(algorithm)s, %(run)s, %(name)s, %(data_uri)s, 'training', %(spec)s)
ON CONFLICT (job_id) DO UPDATE
   SET algorithm = EXCLUDED.algorithm, run = EXCLUDED.run, name = EXCLUDED.name, data_uri = EXCLUDED.data_uri,
       phase = 'training', spec = EXCLUDED.spec, cancel_requested_at = NULL, updated_at = now()
 WHERE sagemaker_runs.phase IN ('done', 'failed', 'cancelled')
RETURNING *;

-- name: run_phase
UPDATE sagemaker_runs SET phase = %(phase)s, updated_at = now() WHERE job_id = %(job_id)s RETURNING *;

-- name: run_cancel
-- POST /v1/forecasts/{job_id}/cancel: the next step of the run sees it and cleans up.
UPDATE sagemaker_runs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
 WHERE job_id = %(job_id)s AND phase IN ('training', 'serving')
RETURNING *;
