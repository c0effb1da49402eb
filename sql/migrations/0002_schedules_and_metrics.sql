-- Schedules: the ticker emits `command` on every slot of `cron` in `timezone`.
CREATE TABLE schedules (
    name           text PRIMARY KEY,
    cron           text NOT NULL,
    timezone       text NOT NULL DEFAULT 'UTC',
    misfire        jsonb NOT NULL DEFAULT '{"policy": "skip"}',
    enabled        boolean NOT NULL DEFAULT true,
    command        jsonb NOT NULL,
    command_type   text NOT NULL,
    alert          jsonb,
    alert_state    text NOT NULL DEFAULT 'ok' CHECK (alert_state IN ('ok', 'firing')),
    next_fire_at   timestamptz,                 -- UTC instant of the next slot
    last_slot      timestamptz,                 -- the newest slot emitted
    last_fired_at  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- a tick reads only the due rows: its work grows with them, not with all schedules
CREATE INDEX schedules_due_idx ON schedules (next_fire_at) WHERE enabled;

-- The original accuracy service's tables, kept as they were (columns may be added, never renamed).
CREATE TABLE metrics_executions (
    id              SERIAL PRIMARY KEY,
    model_id        UUID NOT NULL UNIQUE,
    cron_expression VARCHAR NOT NULL
);
CREATE TABLE results (
    id        SERIAL PRIMARY KEY,
    model_id  UUID NOT NULL,
    y_true    JSON NOT NULL,
    y_pred    JSON NOT NULL,
    timestamp TIMESTAMP WITHOUT TIME ZONE NOT NULL DEFAULT NOW(),
    y_score   JSON                                -- optional class probabilities or scores (ROC AUC, log loss)
);
-- the original had no index: "newest rows of a model" read the whole table
CREATE INDEX results_model_time_idx ON results (model_id, timestamp DESC, id DESC);

-- Every computation, so a trend can be plotted. One row per job (a redelivery upserts).
CREATE TABLE metric_history (
    id          bigserial PRIMARY KEY,
    job_id      text NOT NULL UNIQUE,
    model_id    uuid NOT NULL,
    schedule    text,
    computed_at timestamptz NOT NULL DEFAULT now(),
    n           integer NOT NULL,                 -- predictions the metrics were computed over
    rows        integer NOT NULL,                 -- rows of `results` they came from
    metrics     jsonb NOT NULL
);
CREATE INDEX metric_history_model_idx ON metric_history (model_id, computed_at DESC);

-- Alert webhooks and their delivery.
CREATE TABLE alert_deliveries (
    id           bigserial PRIMARY KEY,
    job_id       text NOT NULL,                   -- the computation that crossed the threshold
    schedule     text NOT NULL,
    model_id     uuid NOT NULL,
    metric       text NOT NULL,
    value        double precision NOT NULL,
    threshold    double precision NOT NULL,
    direction    text NOT NULL CHECK (direction IN ('below', 'above')),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    UNIQUE (job_id, metric)
);
