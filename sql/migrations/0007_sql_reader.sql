-- The role users' SQL runs as (the forecast pool's SQL source): NOLOGIN, no privileges of its own.
-- The worker switches to it with SET LOCAL ROLE inside the READ ONLY transaction of each query and
-- grants it SELECT on the exposed schemas only (FORECAST_SQL_SCHEMAS): never public (jobs,
-- schedules and their webhook URLs), and no superuser, file or server functions (pg_read_file,
-- pg_ls_dir, pg_terminate_backend, current_setting('data_directory') all need more than it has).
-- Roles belong to the whole server: two databases migrating at once may race to create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'switchyard_reader') THEN
        CREATE ROLE switchyard_reader NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot create role switchyard_reader here: create it (NOLOGIN) and grant it to this login';
END
$$;

-- this login may switch to it (a superuser may anyway; an owner role without CREATEROLE needs an
-- administrator to run these two statements)
DO $$
BEGIN
    EXECUTE format('GRANT switchyard_reader TO %I', current_user);
EXCEPTION
    WHEN insufficient_privilege OR undefined_object OR invalid_grant_operation THEN
        RAISE NOTICE 'cannot grant switchyard_reader to %', current_user;
END
$$;
