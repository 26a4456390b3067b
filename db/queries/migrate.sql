-- The migration ledger, orchestrator.schema_migrations: one row per applied file.

-- name: lock
-- One migrating process at a time (a session lock: it spans the run's transactions).
SELECT pg_advisory_lock(%(key)s)

-- name: unlock
-- The run is over.
SELECT pg_advisory_unlock(%(key)s)

-- name: schema_exists
-- Whether the ledger's schema exists.
SELECT 1 FROM pg_namespace WHERE nspname = 'orchestrator'

-- name: create_schema
-- The ledger's schema.
CREATE SCHEMA orchestrator

-- name: ledger_exists
-- Whether the ledger exists where it belongs.
SELECT to_regclass('orchestrator.schema_migrations') IS NOT NULL AS present

-- name: old_ledger_is_ours
-- Our old ledger (in public until issue 25): exactly our columns.
SELECT to_regclass('public.schema_migrations') IS NOT NULL
   AND (SELECT array_agg(attname::text ORDER BY attname) FROM pg_attribute
        WHERE attrelid = to_regclass('public.schema_migrations') AND attnum > 0
          AND NOT attisdropped) = ARRAY['applied_at', 'checksum', 'name', 'version']
   AS ours

-- name: old_ledger_names
-- The names in the old ledger (ours are named like our files).
SELECT name FROM public.schema_migrations

-- name: move_ledger
-- Move our old ledger where it belongs.
ALTER TABLE public.schema_migrations SET SCHEMA orchestrator

-- name: create_ledger
-- A new ledger.
CREATE TABLE orchestrator.schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: lock_down_ledger
-- The ledger is the back end's alone: RLS on and nothing granted, wherever it came from
-- (on Supabase, default privileges grant new tables to anon and authenticated).
DO $$
DECLARE
    r text;
BEGIN
    ALTER TABLE orchestrator.schema_migrations ENABLE ROW LEVEL SECURITY;
    REVOKE ALL ON orchestrator.schema_migrations FROM PUBLIC;
    FOR r IN SELECT rolname FROM pg_roles
             WHERE rolname IN ('anon', 'authenticated', 'service_role', 'authenticator')
    LOOP
        EXECUTE format('REVOKE ALL ON orchestrator.schema_migrations FROM %I', r);
        EXECUTE format('REVOKE ALL ON SCHEMA orchestrator FROM %I', r);
    END LOOP;
END
$$

-- name: applied
-- The migrations applied so far, in version order.
SELECT version, name, checksum FROM orchestrator.schema_migrations ORDER BY version

-- name: insert_applied
-- A migration was applied (in the transaction that applied it).
INSERT INTO orchestrator.schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s)
