-- Jobs: one row per command accepted or received. Postgres is the truth; Redis
-- only mirrors the latest state for fast polling.
CREATE TABLE jobs (
    id              text PRIMARY KEY,            -- = the Dramatiq message_id
    type            text NOT NULL,               -- command type, e.g. gooddata.workspace.create
    queue           text NOT NULL,
    status          text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    command         jsonb NOT NULL,
    options         jsonb NOT NULL DEFAULT '{}',
    idempotency_key text,
    command_hash    text,                        -- detects one idempotency key reused for another command
    progress        jsonb,
    result          jsonb,
    error           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    enqueued_at     timestamptz,                 -- NULL: accepted but not yet handed to the broker
    started_at      timestamptz,
    finished_at     timestamptz
);

-- keyset pagination of GET /v1/jobs, newest first, optionally by status or type
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_type_created_idx ON jobs (type, created_at DESC, id DESC);
-- the sweeper's work list stays small: only accepted jobs the broker never got
CREATE INDEX jobs_unenqueued_idx ON jobs (created_at) WHERE status = 'queued' AND enqueued_at IS NULL;
