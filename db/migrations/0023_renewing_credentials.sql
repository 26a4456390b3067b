-- Credentials that renew themselves (issue 28). Until now a connection stored one access
-- token and a sync failed for good once it expired. From here on:
--   1. platform_connections says when its stored token expires and whether its
--      credentials still work. Google Ads connections keep an OAuth refresh token (inside
--      the same encrypted `credentials`, bound to the row like the access token) and mint
--      short-lived access tokens before a sync; Meta's long-lived tokens are exchanged
--      again before they expire, on a schedule per connection;
--   2. seed 003's threads_accounts (created as the seed writes it where absent, adopted
--      where present) gets the same bookkeeping; its long-lived tokens are refreshed on a
--      schedule per account;
--   3. a refresh that fails for good (consent revoked, token expired beyond refresh)
--      marks the row `revoked` with the reason, pauses its schedules and tells the owner;
--      reconnecting (new credentials) sets it back to `ok` and resumes them.
-- The columns below are the worker's: users are granted none of them.

-- 1. Connections ------------------------------------------------------------------------
ALTER TABLE public.platform_connections
    ADD COLUMN token_expires_at timestamptz,   -- of the stored access token; NULL: never / unknown
    ADD COLUMN token_refreshed_at timestamptz, -- last successful exchange or refresh
    ADD COLUMN credentials_status text NOT NULL DEFAULT 'ok'
        CHECK (credentials_status IN ('ok', 'revoked')),
    ADD COLUMN credentials_error text,          -- why the credentials stopped working
    ADD COLUMN credentials_failed_at timestamptz,
    ADD COLUMN credentials_notified_at timestamptz; -- the owner was told (once per failure)

-- 2. Threads accounts (seed 003) ------------------------------------------------------
-- New tables reference `profiles`; seed 003's own, when adopted, keeps its reference to
-- its `users` (0016 keeps a profile for each of their rows).
CREATE TABLE IF NOT EXISTS public.threads_accounts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES public.profiles (id) ON DELETE CASCADE,
    threads_user_id text NOT NULL,
    username text NOT NULL DEFAULT '',
    profile_pic_url text NOT NULL DEFAULT '',
    access_token text NOT NULL, -- AES-256-GCM, as user_api_keys (v2:<key id>:...)
    token_expires_at timestamptz NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, threads_user_id)
);
ALTER TABLE public.threads_accounts
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS token_refreshed_at timestamptz,
    ADD COLUMN IF NOT EXISTS credentials_status text NOT NULL DEFAULT 'ok',
    ADD COLUMN IF NOT EXISTS credentials_error text,
    ADD COLUMN IF NOT EXISTS credentials_failed_at timestamptz,
    ADD COLUMN IF NOT EXISTS credentials_notified_at timestamptz;
SELECT pg_temp.set_default('public.threads_accounts', c, d)
FROM (VALUES ('username', $$''::text$$), ('profile_pic_url', $$''::text$$),
             ('is_active', 'true')) AS v (c, d);
SELECT pg_temp.set_not_null('public.threads_accounts', c)
FROM unnest('{user_id,threads_user_id,access_token,is_active}'::text[]) AS c;
SELECT pg_temp.add_check('public.threads_accounts', 'threads_accounts_credentials_status_check',
    $$credentials_status = ANY (ARRAY['ok', 'revoked'])$$);
SELECT pg_temp.add_unique('public.threads_accounts', 'threads_accounts_user_id_threads_user_id_key',
    '{user_id,threads_user_id}');
SELECT pg_temp.add_updated_at_trigger('public.threads_accounts', 'threads_accounts_updated_at');
SELECT pg_temp.enable_rls('public.threads_accounts');
SELECT pg_temp.add_policy('public.threads_accounts', 'Users manage their own threads accounts',
    'FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())');

-- What the app writes (seed 003: the user connects and disconnects accounts); whether the
-- credentials still work is the worker's.
REVOKE ALL ON public.threads_accounts FROM anon, authenticated;
GRANT SELECT, DELETE ON public.threads_accounts TO authenticated;
GRANT INSERT (id, user_id, threads_user_id, username, profile_pic_url, access_token,
              token_expires_at, is_active)
    ON public.threads_accounts TO authenticated;
GRANT UPDATE (username, profile_pic_url, access_token, token_expires_at, is_active)
    ON public.threads_accounts TO authenticated;

