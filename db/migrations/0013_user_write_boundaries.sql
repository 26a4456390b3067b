-- What a signed-in user may write, column by column. Row level security decides which
-- rows a user (role `authenticated`, JWT `sub` = auth.uid()) reaches; until now any column
-- of those rows was theirs to write, so a user could raise their own subscription tier,
-- move their generation to a status of their choosing with made-up result URLs, or point
-- a workspace at another user's browser profile. From here on:
--   1. privileges: anon and authenticated get exactly what the app needs, column by
--      column; everything the worker owns (statuses, results, request ids, decisions,
--      timestamps it stamps) is the worker's alone;
--   2. the transition log honours its tags (reason, workflow, run) only from the back end
--      and otherwise records the signed-in user who made the change;
--   3. a browser profile id belongs to the first user whose workspace names it, and a
--      workspace of anyone else naming it is refused.
-- The worker connects as the tables' owner or a BYPASSRLS role (Supabase's postgres or
-- service_role): none of this restricts it.

-- 1. Privileges ---------------------------------------------------------------------------
-- Start from nothing: on Supabase, default privileges grant ALL on every new table in
-- public (TRUNCATE included, which row level security does not govern) to anon and
-- authenticated, so the grants of 0003-0005 were a floor, not a ceiling. A table-level
-- REVOKE also revokes the column privileges of each column. Only the tables named here:
-- other migrations' tables keep their own grants.
REVOKE ALL ON
    public.profiles, public.workspaces, public.jobs, public.approvals, public.job_steps,
    public.memories, public.blobs, public.user_api_keys, public.ai_models, public.assets,
    public.prompts, public.generations, public.platform_connections,
    public.performance_metrics, public.metric_sync_logs, public.webhook_events,
    public.status_transitions, public.status_machine
    FROM anon, authenticated;
REVOKE ALL ON SEQUENCE public.status_transitions_id_seq FROM anon, authenticated;

-- anon (not signed in) gets nothing at all. authenticated gets:
-- profiles: their name, email and persona; never the subscription tier (billing sets it)
-- or the id.
GRANT SELECT ON public.profiles TO authenticated;
GRANT INSERT (id, full_name, email_address, persona_config) ON public.profiles TO authenticated;
GRANT UPDATE (full_name, email_address, persona_config) ON public.profiles TO authenticated;

-- workspaces: their own platforms and browser settings (a profile id is checked below).
-- credentials_vault_id names a secret in the agency's store: the back end sets it.
GRANT SELECT, DELETE ON public.workspaces TO authenticated;
GRANT INSERT (id, user_id, platform_name, agent_email, is_active, browser_settings)
    ON public.workspaces TO authenticated;
GRANT UPDATE (platform_name, agent_email, is_active, browser_settings)
    ON public.workspaces TO authenticated;

-- jobs: the app may create a pending job in one of the user's workspaces; everything
-- after that (status, session, result, workflow id) is the worker's. Approvals and steps
-- are read-only: a decision reaches a job only through the worker (email, link, UI, CLI).
GRANT SELECT ON public.jobs, public.approvals, public.job_steps TO authenticated;
GRANT INSERT (id, user_id, workspace_id, title, instruction, status)
    ON public.jobs TO authenticated;
CREATE POLICY "Users create their own pending jobs" ON public.jobs
    FOR INSERT TO authenticated
    WITH CHECK (
        user_id = auth.uid()
        AND status = 'pending'
        AND (workspace_id IS NULL
             OR workspace_id IN (SELECT id FROM public.workspaces WHERE user_id = auth.uid()))
    );

-- generations: the app may create a pending generation (seed 003) and delete a finished
-- one; status, Higgsfield's request id, results, saved assets, errors, timestamps, the
-- submit claim, the workflow and the batch are the worker's.
GRANT SELECT, DELETE ON public.generations TO authenticated;
GRANT INSERT (id, user_id, prompt_id, prompt_text, model, settings, status)
    ON public.generations TO authenticated;
DROP POLICY "Users manage their own generations" ON public.generations;
CREATE POLICY "Users read their own generations" ON public.generations
    FOR SELECT TO authenticated USING (user_id = auth.uid());
CREATE POLICY "Users create their own pending generations" ON public.generations
    FOR INSERT TO authenticated
    WITH CHECK (
        user_id = auth.uid()
        AND status = 'pending'
        AND (prompt_id IS NULL
             OR prompt_id IN (SELECT id FROM public.prompts WHERE user_id = auth.uid()))
    );
CREATE POLICY "Users delete their own finished generations" ON public.generations
    FOR DELETE TO authenticated
    USING (user_id = auth.uid() AND status IN ('completed', 'failed', 'nsfw', 'cancelled'));

-- memories: their own; the idempotency key is the worker's (a retried store finds its row
-- by it).
GRANT SELECT, DELETE ON public.memories TO authenticated;
GRANT INSERT (id, user_id, content, metadata, embedding) ON public.memories TO authenticated;
GRANT UPDATE (content, metadata, embedding) ON public.memories TO authenticated;

-- Their own keys, models, assets and prompts: every column (row level security keeps
-- them to their own rows; a key's service names the row, so it is not rewritten).
GRANT SELECT, DELETE ON public.user_api_keys TO authenticated;
GRANT INSERT (id, user_id, service, encrypted_api_key) ON public.user_api_keys TO authenticated;
GRANT UPDATE (encrypted_api_key) ON public.user_api_keys TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ai_models, public.assets, public.prompts
    TO authenticated;

-- Ad-platform connections: their own; where the last sync reached is the worker's.
GRANT SELECT, DELETE ON public.platform_connections TO authenticated;
GRANT INSERT (id, platform, credentials, account_id, account_name, is_active, sync_frequency,
              created_by)
    ON public.platform_connections TO authenticated;
GRANT UPDATE (platform, credentials, account_id, account_name, is_active, sync_frequency)
    ON public.platform_connections TO authenticated;
GRANT SELECT ON public.performance_metrics, public.metric_sync_logs TO authenticated;

-- The back end's tables (status_transitions, status_machine, webhook_events, blobs): nothing.
-- The migration ledger lives in the schema orchestrator, which they cannot use.

-- 2. A transition log users cannot steer -----------------------------------------------
-- The worker tags its transactions with set_config('orchestrator.reason' / 'workflow_id'
-- / 'run_id', ..., true) and the log trigger copied them into each row. But any session
-- may set any custom setting, so a user changing a row they may change (inserting their
-- own pending generation) could write the log row's reason and workflow of their choice.
-- The trigger now asks who made the change and honours the tags only from the back end:
-- a superuser, a BYPASSRLS role (Supabase's service_role, and its postgres) or a member of
-- the table's owner. Anyone else (anon, authenticated, any role row level security
-- applies to) gets no tags, and the row records the user from auth.uid() instead.
--
-- Who made the change: the function runs as its owner (SECURITY DEFINER, so it may write
-- the log users may not), which makes current_user its owner. The caller is the role the
-- session switched to with SET ROLE (PostgREST switches to anon or authenticated per
-- request; the `role` setting shows it, and only a member of a role may set it), or the
-- login role when none was set. session_user cannot be changed without superuser, so
-- neither can be forged from inside a session.
ALTER TABLE public.status_transitions
    ADD COLUMN actor_role text,     -- the role the change was made as
    ADD COLUMN actor_user_id uuid;  -- auth.uid() of a signed-in user's change (else NULL)

CREATE OR REPLACE FUNCTION public.log_status_transition() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor text := CASE WHEN current_setting('role') = 'none' THEN session_user::text
                       ELSE current_setting('role') END;
    trusted boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    SELECT r.rolsuper OR r.rolbypassrls OR pg_has_role(r.oid, c.relowner, 'MEMBER')
    INTO trusted
    FROM pg_catalog.pg_roles r, pg_catalog.pg_class c
    WHERE r.rolname = actor AND c.oid = TG_RELID;
    trusted := coalesce(trusted, false);
    INSERT INTO public.status_transitions
        (entity, entity_id, from_status, to_status, reason, workflow_id, run_id, actor_role,
         actor_user_id)
    VALUES (
        TG_TABLE_NAME,
        NEW.id,
        CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END,
        NEW.status,
        CASE WHEN trusted THEN nullif(current_setting('orchestrator.reason', true), '') END,
        CASE WHEN trusted THEN nullif(current_setting('orchestrator.workflow_id', true), '') END,
        CASE WHEN trusted THEN nullif(current_setting('orchestrator.run_id', true), '') END,
        actor,
        CASE WHEN NOT trusted THEN auth.uid() END
    );
    RETURN NULL;
END
$$;

-- 3. Browser profiles belong to one user --------------------------------------------------
-- A workspace's browser_settings.profile_id names a Steel profile: a browser's saved
-- state, logins included, in the agency's one Steel account. A job opens its session with
-- its workspace's profile, so a user who names another user's profile would work in that
-- user's logged-in browser. Steel cannot tell our users apart, so the database does: the
-- first workspace to name a profile claims it for its user, and a workspace of anyone
-- else naming it is refused, whoever writes it (users and the worker alike; the worker
-- only reads browser_settings, so what it reads has passed this check).
CREATE TABLE public.browser_profiles (
    profile_id text PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES public.profiles (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.browser_profiles ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.browser_profiles FROM anon, authenticated;  -- Supabase's defaults
GRANT SELECT ON public.browser_profiles TO authenticated;
CREATE POLICY "Users read their own browser profiles" ON public.browser_profiles
    FOR SELECT TO authenticated USING (user_id = auth.uid());

-- Existing workspaces: a profile named by one user is theirs; one named by several users
-- goes to the user of the oldest workspace naming it, and the others' workspaces lose the
-- reference (their next job opens a fresh browser instead of someone else's).
INSERT INTO public.browser_profiles (profile_id, user_id)
SELECT DISTINCT ON (browser_settings ->> 'profile_id') browser_settings ->> 'profile_id', user_id
FROM public.workspaces
WHERE jsonb_typeof(browser_settings -> 'profile_id') = 'string'
  AND browser_settings ->> 'profile_id' <> '' AND user_id IS NOT NULL
ORDER BY browser_settings ->> 'profile_id', created_at, id;
UPDATE public.workspaces w SET browser_settings = w.browser_settings - 'profile_id'
WHERE w.browser_settings ? 'profile_id'
  AND NOT EXISTS (
      SELECT 1 FROM public.browser_profiles b
      WHERE b.profile_id = w.browser_settings ->> 'profile_id' AND b.user_id = w.user_id
  );

-- SECURITY DEFINER: the check must see (and claim in) a table users cannot write, and the
-- other users' claims row level security hides from them.
CREATE FUNCTION public.claim_browser_profile() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    profile jsonb := NEW.browser_settings -> 'profile_id';
    owner_id uuid;
BEGIN
    IF jsonb_typeof(NEW.browser_settings) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'workspaces.browser_settings must be a JSON object'
            USING ERRCODE = 'check_violation';
    END IF;
    IF profile IS NULL OR profile = 'null'::jsonb THEN
        RETURN NEW;
    END IF;
    IF jsonb_typeof(profile) <> 'string' OR profile #>> '{}' = '' THEN
        RAISE EXCEPTION 'browser_settings.profile_id must be a non-empty string'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.user_id IS NULL THEN
        RAISE EXCEPTION 'a workspace without a user cannot use a browser profile'
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO public.browser_profiles (profile_id, user_id)
    VALUES (profile #>> '{}', NEW.user_id)
    ON CONFLICT (profile_id) DO NOTHING;
    SELECT b.user_id INTO owner_id FROM public.browser_profiles b
    WHERE b.profile_id = profile #>> '{}';
    IF owner_id IS DISTINCT FROM NEW.user_id THEN
        RAISE EXCEPTION 'browser profile % belongs to another user', profile #>> '{}'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER workspaces_browser_profile
    BEFORE INSERT OR UPDATE OF browser_settings, user_id ON public.workspaces
    FOR EACH ROW EXECUTE FUNCTION public.claim_browser_profile();
