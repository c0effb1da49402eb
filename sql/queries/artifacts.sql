-- Named queries of the artifact records (sql/migrations/0004_artifacts.sql).

-- name: save
-- A redelivered job writes the same key again: the row follows the last write.
INSERT INTO artifacts (job_id, store_url, key, file_name, content_type, size_bytes, sha256)
VALUES (%(job_id)s, %(store_url)s, %(key)s, %(file_name)s, %(content_type)s, %(size_bytes)s, %(sha256)s)
ON CONFLICT (job_id) DO UPDATE
   SET store_url = excluded.store_url, key = excluded.key, file_name = excluded.file_name,
       content_type = excluded.content_type, size_bytes = excluded.size_bytes, sha256 = excluded.sha256,
       created_at = now()
RETURNING *;

-- name: get
SELECT * FROM artifacts WHERE job_id = %(job_id)s;

-- name: of_jobs
-- The artifacts of jobs about to be deleted (job retention removes their files first).
SELECT * FROM artifacts WHERE job_id = ANY(%(ids)s);
