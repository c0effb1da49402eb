-- Leases of running jobs, for the reconciler (workers/reconciler.py). A running attempt holds its
-- job until lease_until; its worker renews the lease while the job runs (workers/leases.py, and
-- every progress write). A job whose lease ran out and that no live worker lists is re-driven.
-- reclaims: attempts lost that way (the worker died, or lost Postgres for longer than the lease).
-- Both columns are added without a table rewrite (a NULL and a constant default).
ALTER TABLE jobs ADD COLUMN lease_until timestamptz;
ALTER TABLE jobs ADD COLUMN reclaims integer NOT NULL DEFAULT 0;

-- the reconciler's work list: running jobs by lease, a few rows however large the table
CREATE INDEX jobs_running_lease_idx ON jobs (lease_until) WHERE status = 'running';
