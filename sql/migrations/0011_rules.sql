-- Rules: when a job event matches `when`, submit `then.command` or send `then.notify`
-- (contracts/rules.py). `source` says who wrote the rule: the API or a bus command ('api'), or
-- the catalog YAML ('catalog', replaced whenever the catalog is loaded again).
CREATE TABLE IF NOT EXISTS rules (
    name        text PRIMARY KEY,
    "when"      jsonb NOT NULL,
    "then"      jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    source      text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'catalog')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (rule, event) the rule matched: what it did. The unique key makes a redelivered
-- event, or a second rule processor, find the firing already there.
CREATE TABLE IF NOT EXISTS rule_firings (
    id           bigserial PRIMARY KEY,
    rule         text NOT NULL,
    event_id     text NOT NULL,
    job_id       text NOT NULL,             -- the triggering job
    follow_up_id text,                      -- the job the rule submitted (command or notification)
    outcome      text NOT NULL CHECK (outcome IN ('submitted', 'stopped', 'failed')),
    reason       text,                      -- why a firing was stopped or failed
    fired_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (rule, event_id)
);
CREATE INDEX IF NOT EXISTS rule_firings_rule_idx ON rule_firings (rule, fired_at DESC);

-- A follow-up job names the job that caused it in its options; its page lists what it caused.
CREATE INDEX IF NOT EXISTS jobs_caused_by_idx ON jobs ((options ->> 'caused_by')) WHERE options ? 'caused_by';
