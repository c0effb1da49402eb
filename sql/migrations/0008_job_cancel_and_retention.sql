-- A running job cannot be stopped from outside its thread: a cancel request is recorded here and
-- the job's next progress report reads it (the progress UPDATE returns it) and ends it cancelled.
-- A queued or retrying job is cancelled at once; the column then says when that was asked.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz;

-- Job retention (workers/job_retention.py): the oldest finished jobs first, in batches, without
-- reading the jobs that are still open. Partial, so open jobs cost it nothing. IF NOT EXISTS: on a
-- large table an operator may build it beforehand with CREATE INDEX CONCURRENTLY under this name.
CREATE INDEX IF NOT EXISTS jobs_finished_idx ON jobs (finished_at)
 WHERE status IN ('succeeded', 'dead', 'cancelled');
