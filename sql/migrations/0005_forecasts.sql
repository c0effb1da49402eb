-- Results of the forecast pool, and the SageMaker runs it drives.
-- Every row carries the job id: a redelivered job upserts the same keys instead of adding rows.

-- One row per series of a forecast or anomalies job: the model and its backtest accuracy
-- (MASE and sMAPE on a holdout of the last horizon), or the anomaly threshold.
CREATE TABLE forecast_series (
    job_id     text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    series_id  text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('forecast', 'anomalies')),
    backend    text NOT NULL CHECK (backend IN ('local', 'sagemaker')),
    model      text NOT NULL,              -- e.g. AutoETS, AutoTheta, Ensemble, DeepAR, RandomCutForest
    points     integer NOT NULL,           -- observations the model saw
    mase       double precision,           -- forecast: backtest on the last horizon
    smape      double precision,           -- forecast: in percent, 0..200
    threshold  double precision,           -- anomalies: scores above it are flagged
    anomalies  integer,                    -- anomalies: how many points were flagged
    PRIMARY KEY (job_id, series_id)
);

CREATE TABLE forecasts (
    job_id     text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    series_id  text NOT NULL,
    ts         timestamptz NOT NULL,
    mean       double precision NOT NULL,
    quantiles  jsonb NOT NULL,             -- {"0.025": 97.1, "0.5": 104.0, "0.975": 110.8}
    PRIMARY KEY (job_id, series_id, ts)
);

CREATE TABLE anomalies (
    job_id     text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    series_id  text NOT NULL,
    ts         timestamptz NOT NULL,
    value      double precision,
    score      double precision NOT NULL,
    is_anomaly boolean NOT NULL,
    PRIMARY KEY (job_id, series_id, ts)
);
CREATE INDEX anomalies_flagged_idx ON anomalies (job_id, series_id, ts) WHERE is_anomaly;

-- A SageMaker training job and the model, endpoint config and endpoint made from it (one name
-- for all four). The row outlives worker processes: a redelivered or continued job finds its
-- resources here, and anything still listed as live can be cleaned up.
CREATE TABLE sagemaker_runs (
    job_id              text PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    algorithm           text NOT NULL CHECK (algorithm IN ('deepar', 'randomcutforest')),
    run                 integer NOT NULL,   -- a manual retry of a dead job starts the next run
    name                text NOT NULL,
    data_uri            text NOT NULL,      -- s3://bucket/prefix/<name>/
    phase               text NOT NULL CHECK (phase IN ('training', 'serving', 'done', 'failed', 'cancelled')),
    spec                jsonb NOT NULL,     -- what the later steps need (series ids, starts, freq, ...)
    cancel_requested_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sagemaker_runs_live_idx ON sagemaker_runs (updated_at) WHERE phase IN ('training', 'serving');
