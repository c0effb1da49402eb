-- Control tables of the pipelines pool (migration 0003).

-- name: watermark_lock
-- serialises loads of one table: the row is locked until the load's transaction ends
INSERT INTO pipeline_watermarks (table_name) VALUES (%(table)s)
ON CONFLICT (table_name) DO UPDATE SET table_name = EXCLUDED.table_name
RETURNING watermark, data_date, run_date, run_count

-- name: watermark_advance
UPDATE pipeline_watermarks
SET watermark = %(watermark)s,
    data_date = %(data_date)s,
    run_count = CASE WHEN %(count_run)s AND run_date = %(run_date)s THEN run_count + 1
                     WHEN %(count_run)s THEN 1 ELSE run_count END,
    run_date = CASE WHEN %(count_run)s THEN %(run_date)s ELSE run_date END,
    updated_at = now()
WHERE table_name = %(table)s

-- name: watermark_forget
DELETE FROM pipeline_watermarks WHERE table_name = %(table)s

-- name: watermarks
SELECT table_name, watermark, data_date, run_date, run_count, updated_at
FROM pipeline_watermarks WHERE table_name = ANY(%(tables)s) ORDER BY table_name

-- name: run_start
-- the run of a job; a redelivered or retried message resumes the same row
INSERT INTO pipeline_runs (id, pipeline_id, mode, run_date, range_start, range_end, status, catalog_version,
                           triggered_by)
VALUES (%(id)s, %(pipeline_id)s, %(mode)s, %(run_date)s, %(range_start)s, %(range_end)s, 'running',
        %(catalog_version)s, %(triggered_by)s)
ON CONFLICT (id) DO UPDATE
SET status = 'running', attempts = pipeline_runs.attempts + 1, error = NULL, failed_node = NULL,
    finished_at = NULL, catalog_version = EXCLUDED.catalog_version
RETURNING id

-- name: run_finish
UPDATE pipeline_runs
SET status = %(status)s, failed_node = %(failed_node)s, error = %(error)s, finished_at = now()
WHERE id = %(id)s

-- name: node_done
INSERT INTO pipeline_node_results (run_id, node_id, target, status, rows, duration_ms, error)
VALUES (%(run_id)s, %(node_id)s, %(target)s, %(status)s, %(rows)s, %(duration_ms)s, %(error)s)
ON CONFLICT (run_id, node_id) DO UPDATE
SET status = EXCLUDED.status, rows = EXCLUDED.rows, duration_ms = EXCLUDED.duration_ms, error = EXCLUDED.error,
    finished_at = now()

-- name: nodes_succeeded
SELECT node_id FROM pipeline_node_results WHERE run_id = %(run_id)s AND status = 'succeeded'

-- name: triggers_ready
-- every upstream pipeline succeeded since this pipeline's latest run started
SELECT count(DISTINCT r.pipeline_id) AS ready
FROM pipeline_runs r
WHERE r.pipeline_id = ANY(%(triggers)s) AND r.status = 'succeeded'
  AND r.finished_at > COALESCE(
      (SELECT max(started_at) FROM pipeline_runs WHERE pipeline_id = %(pipeline_id)s), '-infinity'::timestamptz)

-- name: runs
SELECT r.id, r.pipeline_id, r.mode, r.run_date, r.range_start, r.range_end, r.status, r.failed_node, r.error,
       r.catalog_version, r.triggered_by, r.attempts, r.started_at, r.finished_at,
       COALESCE((SELECT json_agg(json_build_object(
                    'node', n.node_id, 'target', n.target, 'status', n.status, 'rows', n.rows,
                    'duration_ms', n.duration_ms, 'error', n.error) ORDER BY n.finished_at, n.node_id)
                 FROM pipeline_node_results n WHERE n.run_id = r.id), '[]'::json) AS nodes
FROM pipeline_runs r
WHERE r.pipeline_id = %(pipeline_id)s
  AND (%(before)s::timestamptz IS NULL OR (r.started_at, r.id) < (%(before)s::timestamptz, %(before_id)s))
ORDER BY r.started_at DESC, r.id DESC
LIMIT %(limit)s
