-- Artifacts: the file a job produced (an export, a backup), one per job. The bytes live
-- in the artifact store (a directory or S3); this row says where and what they are.
CREATE TABLE artifacts (
    job_id       text PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    store_url    text NOT NULL,      -- the ARTIFACTS_URL it was written to (a later change of it still finds it)
    key          text NOT NULL,      -- location inside that store: jobs/<job id>/<file name>
    file_name    text NOT NULL,
    content_type text NOT NULL,
    size_bytes   bigint NOT NULL,
    sha256       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
