"""A database set up like a current Supabase project, on the embedded Postgres.

What matters for migrations, as Supabase has it since 2025-04 (shared/PRODUCTION-NOTES):
- the migrating role (here ``supa_postgres``, Supabase's ``postgres``) is not a superuser;
  it owns the database (so it owns ``public`` through pg_database_owner and may create
  schemas), has CREATEROLE, CREATEDB, REPLICATION and BYPASSRLS, and its search_path is
  ``"$user", public, extensions``;
- ``auth`` and everything in it (``auth.users``, ``auth.uid()``, ``auth.jwt()``) belong to
  ``supabase_auth_admin``, which grants that role USAGE on the schema and SELECT,
  REFERENCES, TRIGGER on ``auth.users``: no CREATE, no ALTER;
- ``storage`` (``buckets``, ``objects`` with RLS, ``foldername()``) belongs to
  ``supabase_storage_admin``; the migrating role may read and write its rows only;
- ``vector`` and ``uuid-ossp``'s ``uuid_generate_v4()`` are installed in the ``extensions`` schema;
- ``anon``, ``authenticated``, ``service_role`` (BYPASSRLS) and ``authenticator`` exist, and
  tables the migrating role creates in ``public`` are granted to the API roles by default.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

OWNER = "supa_postgres"

CLUSTER_ROLES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_auth_admin') THEN
        CREATE ROLE supabase_auth_admin NOLOGIN NOINHERIT CREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_storage_admin') THEN
        CREATE ROLE supabase_storage_admin NOLOGIN NOINHERIT CREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
        GRANT anon, authenticated, service_role TO authenticator;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supa_postgres') THEN
        CREATE ROLE supa_postgres LOGIN NOSUPERUSER CREATEROLE CREATEDB REPLICATION BYPASSRLS;
        -- As on Supabase, the project's role can act as the API roles (SET ROLE).
        GRANT anon, authenticated, service_role TO supa_postgres;
    END IF;
END
$$
"""

# Run as the superuser (Supabase's supabase_admin) in the new database.
PROJECT = """
CREATE SCHEMA extensions;
GRANT USAGE ON SCHEMA extensions TO supa_postgres, anon, authenticated, service_role;
CREATE EXTENSION vector WITH SCHEMA extensions;
-- uuid-ossp is not in the embedded build: its v4 generator, as seed 003 calls it.
CREATE FUNCTION extensions.uuid_generate_v4() RETURNS uuid LANGUAGE sql VOLATILE
    AS 'SELECT gen_random_uuid()';

CREATE SCHEMA auth AUTHORIZATION supabase_auth_admin;
SET ROLE supabase_auth_admin;
CREATE TABLE auth.users (
    instance_id uuid,
    id uuid PRIMARY KEY,
    aud varchar(255),
    role varchar(255),
    email varchar(255),
    encrypted_password varchar(255),
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    created_at timestamptz,
    updated_at timestamptz
);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;
RESET ROLE;
GRANT USAGE ON SCHEMA auth TO supa_postgres, anon, authenticated, service_role;
GRANT SELECT, REFERENCES, TRIGGER ON auth.users TO supa_postgres;

CREATE SCHEMA storage AUTHORIZATION supabase_storage_admin;
SET ROLE supabase_storage_admin;
CREATE TABLE storage.buckets (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    owner uuid,
    public boolean DEFAULT false,
    file_size_limit bigint,
    allowed_mime_types text[],
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);
CREATE TABLE storage.objects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    bucket_id text REFERENCES storage.buckets (id),
    name text,
    owner uuid,
    metadata jsonb,
    path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    UNIQUE (bucket_id, name)
);
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION storage.foldername(name text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT (string_to_array(name, '/'))[1:cardinality(string_to_array(name, '/')) - 1]
$$;
RESET ROLE;
GRANT USAGE ON SCHEMA storage TO supa_postgres, anon, authenticated, service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON storage.buckets, storage.objects
    TO supa_postgres, service_role;
GRANT SELECT ON storage.buckets, storage.objects TO authenticated;

-- Supabase grants what the project's role creates in public to the API roles.
ALTER DEFAULT PRIVILEGES FOR ROLE supa_postgres IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supa_postgres IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supa_postgres IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""


def database_url(admin_url: str, name: str, user: str | None = None, **extra: str) -> str:
    """``admin_url`` pointed at database ``name`` (as ``user``)."""
    params = conninfo_to_dict(admin_url)
    params["dbname"] = name
    if user:
        params["user"] = user
        params.pop("password", None)
    params.update(extra)
    return make_conninfo(**params)


async def create_supabase_database(admin_url: str) -> str:
    """A new database set up like a Supabase project; returns the migrating role's URL."""
    name = f"supa_{uuid.uuid4().hex[:12]}"
    async with await AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(CLUSTER_ROLES)
        await conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(OWNER)
            )
        )
        await conn.execute(
            sql.SQL(
                'ALTER ROLE {} IN DATABASE {} SET search_path = "$user", public, extensions'
            ).format(sql.Identifier(OWNER), sql.Identifier(name))
        )
    async with await AsyncConnection.connect(
        database_url(admin_url, name), autocommit=True
    ) as conn:
        await conn.execute(PROJECT)
    return database_url(admin_url, name, OWNER)


@pytest.fixture
async def supabase_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A Supabase-like database of this test's own (the migrating role's URL)."""
    yield await create_supabase_database(pg_admin_url)


@pytest.fixture
def admin_url_of(pg_admin_url: str):  # type: ignore[no-untyped-def]
    """The superuser's URL for a test database (the Supabase dashboard's view)."""

    def of(url: str) -> str:
        return database_url(pg_admin_url, str(conninfo_to_dict(url)["dbname"]))

    return of
