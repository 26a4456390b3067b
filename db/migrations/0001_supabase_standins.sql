-- Supabase stand-ins. On a Supabase project the `auth` schema, `auth.users`, `auth.uid()`
-- and the roles `anon`, `authenticated`, `service_role` already exist and belong to
-- Supabase (`auth` to supabase_auth_admin, which grants the migrating role `postgres` no
-- CREATE there): this file then runs no statement on them at all. On plain Postgres it
-- creates minimal equivalents, so the same migrations (foreign keys to auth.users, RLS
-- policies on auth.uid()) apply unchanged. Every step is guarded by a catalog lookup:
-- `CREATE ... IF NOT EXISTS` would check privileges on the schema before it checks
-- existence and fail on Supabase.
--
-- Rewritten in place (issue 25); its earlier text is accepted as applied (db/migrate.py,
-- SUPERSEDED): on a database where that text ran, this one would change nothing.

DO $$
BEGIN
    -- pgvector: only when missing; where Supabase keeps extensions (`extensions`) when
    -- that schema exists. `CREATE EXTENSION IF NOT EXISTS` is avoided on purpose: the
    -- catalog says it exists, whatever schema it is in.
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'extensions') THEN
            CREATE EXTENSION vector WITH SCHEMA extensions;
        ELSE
            CREATE EXTENSION vector;
        END IF;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        -- As on Supabase: the back-end role, which bypasses row level security.
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') THEN
        CREATE SCHEMA auth;
        GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
    END IF;
    IF to_regclass('auth.users') IS NULL THEN
        CREATE TABLE auth.users (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            email text UNIQUE,
            raw_user_meta_data jsonb DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now()
        );
    END IF;
    IF to_regprocedure('auth.uid()') IS NULL THEN
        -- Same definition as Supabase's: the `sub` claim of the request's JWT.
        CREATE FUNCTION auth.uid() RETURNS uuid
        LANGUAGE sql STABLE AS $body$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim.sub', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
            )::uuid
        $body$;
    END IF;
END
$$;

-- The project's own schema (on Supabase: owned by pg_database_owner, which the migrating
-- role is), not Supabase's.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
