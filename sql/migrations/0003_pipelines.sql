-- Control tables of the pipelines pool. The data tables themselves are created by
-- the `pipelines.setup` command from the catalog, not by migrations.

-- One row per catalog table that has a watermark column: how far it is loaded.
CREATE TABLE pipeline_watermarks (
    table_name  text PRIMARY KEY,              -- schema.table
    watermark   text,                          -- max of the watermark column, in the column's type (NULL: empty)
    data_date   date,                          -- the watermark's date, as the original control table had it
    run_date    date,                          -- run_date of the last incremental run
    run_count   integer NOT NULL DEFAULT 0,    -- incremental runs on that run_date
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per pipeline run; id = the job id, so a redelivered message resumes its run.
CREATE TABLE pipeline_runs (
    id              text PRIMARY KEY,
    pipeline_id     text NOT NULL,
    mode            text NOT NULL CHECK (mode IN ('incremental', 'rerun')),
    run_date        date,
    range_start     date,
    range_end       date,
    status          text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    failed_node     text,
    error           text,
    catalog_version text NOT NULL,
    triggered_by    text,                      -- the upstream run whose success started this one
    attempts        integer NOT NULL DEFAULT 1,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX pipeline_runs_pipeline_idx ON pipeline_runs (pipeline_id, started_at DESC, id DESC);

-- One row per node of a run.
CREATE TABLE pipeline_node_results (
    run_id      text NOT NULL REFERENCES pipeline_runs (id) ON DELETE CASCADE,
    node_id     text NOT NULL,
    target      text NOT NULL,
    status      text NOT NULL CHECK (status IN ('succeeded', 'failed', 'skipped')),
    rows        bigint,
    duration_ms integer,
    error       text,
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, node_id)
);

-- Batches of rows being ingested land here (unlogged tables, one per batch) before
-- they are upserted into their catalog table; see workers/pipelines/staging.py.
CREATE SCHEMA pipelines_staging;
