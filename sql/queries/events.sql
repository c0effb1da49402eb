-- Named queries of the job events outbox (bus/event_outbox.py). The rows are written by the
-- trigger on jobs (migration 0012); these only read and mark them.

-- name: claim
-- The oldest events not yet published, locked until the relay's transaction ends: two relays (two
-- tickers) take different rows, and a relay that dies leaves its rows to the next one.
SELECT id, job_id, attempt, status, type, queue, result, error, caused_by, rule, chain_depth, occurred_at
  FROM job_events
 WHERE published_at IS NULL
 ORDER BY id
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED;

-- name: mark_published
UPDATE job_events SET published_at = now() WHERE id = ANY(%(ids)s);

-- name: count_unpublished
-- Read through job_events_unpublished_idx: as cheap as the backlog is small.
SELECT count(*) AS n FROM job_events WHERE published_at IS NULL;
