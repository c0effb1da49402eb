-- The runs of one schedule, newest first (the dashboard's schedule page): the ticker's jobs carry
-- the schedule's name in options.schedule. Partial, so jobs submitted by hand cost it nothing.
-- The predicate is IS NOT NULL rather than `options ? 'schedule'`: `options->>'schedule' = $1` implies
-- it, so the query needs no extra term, and the planner's row estimate then comes from this index's
-- own statistics alone (with `?` it multiplies in a guessed selectivity, underestimates a schedule's
-- runs, and may read and sort all of them instead of walking the index for the newest few).
-- IF NOT EXISTS: on a large table an operator may build it beforehand with CREATE INDEX CONCURRENTLY
-- under this name, and this migration then does not hold the write lock for the build.
CREATE INDEX IF NOT EXISTS jobs_schedule_created_idx
    ON jobs ((options->>'schedule'), created_at DESC)
 WHERE (options->>'schedule') IS NOT NULL;
