-- Named queries of the reconciler (workers/reconciler.py): Postgres drives recovery.
-- Every work list is locked FOR UPDATE SKIP LOCKED, so any number of tickers can run it.

-- name: expired_leases
-- Running jobs whose lease ran out, except those a live worker still lists (its Postgres writes
-- fail, but it runs them). A row without a lease (started before leases existed) is judged by its
-- last write.
SELECT id, type, queue, command, options, attempts, reclaims FROM jobs
 WHERE status = 'running'
   AND (lease_until < now() OR (lease_until IS NULL AND updated_at < now() - make_interval(secs => %(lease_s)s)))
   AND NOT (id = ANY(%(listed)s))
 ORDER BY lease_until NULLS FIRST
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED;

-- name: reclaim_many
-- Lost attempts: back to queued with their message sent again, or dead once they were lost too often.
-- The attempt stays counted in `attempts`; `reclaims` counts the losses.
UPDATE jobs
   SET status = t.status, error = t.error, reclaims = jobs.reclaims + 1, lease_until = NULL, updated_at = now(),
       enqueued_at = CASE WHEN t.status = 'queued' THEN clock_timestamp() ELSE jobs.enqueued_at END,
       finished_at = CASE WHEN t.status = 'dead' THEN now() END
  FROM unnest(%(ids)s::text[], %(statuses)s::text[], %(errors)s::jsonb[]) AS t(id, status, error)
 WHERE jobs.id = t.id AND jobs.status = 'running'
RETURNING jobs.*;

-- name: open_by_queue
-- How many jobs of each queue need a message in the broker: waiting, delayed for a retry, running.
SELECT queue, count(*) AS n FROM jobs
 WHERE status IN ('queued', 'failed', 'running') AND enqueued_at IS NOT NULL
 GROUP BY queue;

-- name: waiting
-- Jobs of one queue whose message should be in the broker by now: queued and sent `queued_after_s`
-- ago, or failed (a retry scheduled) `failed_after_s` ago. Keyset-paginated on (created_at, id).
SELECT * FROM jobs
 WHERE queue = %(queue)s
   AND ((status = 'queued' AND enqueued_at < now() - make_interval(secs => %(queued_after_s)s))
     OR (status = 'failed' AND updated_at < now() - make_interval(secs => %(failed_after_s)s)))
   AND (created_at, id) > (%(after_created)s, %(after_id)s)
 ORDER BY created_at, id
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED;

-- name: resent
-- Their message was sent again just now.
UPDATE jobs SET status = 'queued', enqueued_at = clock_timestamp(), updated_at = now()
 WHERE id = ANY(%(ids)s) AND status IN ('queued', 'failed');

-- name: dead_lettered
-- Jobs whose only message is in the broker's dead-letter queue: nothing will run them.
UPDATE jobs SET status = 'dead', error = %(error)s, finished_at = now(), updated_at = now(), lease_until = NULL
 WHERE id = ANY(%(ids)s) AND status IN ('queued', 'failed')
RETURNING *;
