-- Seed 000: profiles, workspaces, jobs, approvals, memories; plus job_steps and blobs.
-- `profiles` is the worker's identity table: seed 003 calls its user table `users`; where
-- that table exists, 0016 keeps a profile for each of its rows.
--
-- A database may already hold seed 000's tables exactly as the seed writes them, with the
-- app's rows: each table is then adopted instead of created. Missing columns, keys,
-- checks, indexes, triggers and policies are added (db/adopt.sql); no row or value is
-- changed and nothing is dropped; a rule the existing rows break is left out with a
-- warning. On an empty database the CREATE TABLEs below make every later step a no-op.
--
-- Rewritten in place (issue 25); its earlier text (plain CREATE TABLEs) is accepted as
-- applied (db/migrate.py, SUPERSEDED): where it ran, this one would change nothing.

CREATE TABLE IF NOT EXISTS public.profiles (
    id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    full_name text,
    email_address text UNIQUE,
    persona_config jsonb DEFAULT '{"style": "professional", "verbosity": "medium"}'::jsonb,
    -- From seed 003's users: the tier sets the concurrent-generation limit.
    subscription_tier text NOT NULL DEFAULT 'free'
        CHECK (subscription_tier IN ('free', 'basic', 'pro', 'enterprise')),
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.profiles
    ADD COLUMN IF NOT EXISTS full_name text,
    ADD COLUMN IF NOT EXISTS email_address text,
    ADD COLUMN IF NOT EXISTS persona_config jsonb
        DEFAULT '{"style": "professional", "verbosity": "medium"}'::jsonb,
    ADD COLUMN IF NOT EXISTS subscription_tier text NOT NULL DEFAULT 'free',
    ADD COLUMN IF NOT EXISTS created_at timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.add_foreign_key('public.profiles', 'profiles_id_fkey', '{id}',
    'auth.users (id) ON DELETE CASCADE');
SELECT pg_temp.add_unique('public.profiles', 'profiles_email_address_key', '{email_address}');
SELECT pg_temp.add_check('public.profiles', 'profiles_subscription_tier_check',
    $$subscription_tier = ANY (ARRAY['free', 'basic', 'pro', 'enterprise'])$$);

CREATE TABLE IF NOT EXISTS public.workspaces (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid REFERENCES public.profiles (id) ON DELETE CASCADE,
    platform_name text NOT NULL, -- 'Notion', 'GoogleDocs', 'Linear'
    agent_email text,
    credentials_vault_id uuid,
    is_active boolean DEFAULT true,
    -- Added: Steel session settings for this platform (timeout, profile_id, ...).
    browser_settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.workspaces
    ADD COLUMN IF NOT EXISTS user_id uuid,
    ADD COLUMN IF NOT EXISTS agent_email text,
    ADD COLUMN IF NOT EXISTS credentials_vault_id uuid,
    ADD COLUMN IF NOT EXISTS is_active boolean DEFAULT true,
    ADD COLUMN IF NOT EXISTS browser_settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS created_at timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.add_foreign_key('public.workspaces', 'workspaces_user_id_fkey', '{user_id}',
    'public.profiles (id) ON DELETE CASCADE');

CREATE TABLE IF NOT EXISTS public.jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid REFERENCES public.profiles (id),
    temporal_workflow_id text UNIQUE,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'waiting_approval', 'completed', 'failed',
                          'cancelled')),
    last_resend_thread_id text,
    steel_session_id text,
    created_at timestamptz DEFAULT now(),
    -- Added for the worker: what the job is, where it runs, how it ended.
    workspace_id uuid REFERENCES public.workspaces (id) ON DELETE SET NULL,
    title text,
    instruction text,
    steel_session_viewer_url text,
    error_message text,
    result jsonb,
    started_at timestamptz,
    completed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.jobs
    ADD COLUMN IF NOT EXISTS user_id uuid,
    ADD COLUMN IF NOT EXISTS temporal_workflow_id text,
    ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'pending',
    ADD COLUMN IF NOT EXISTS last_resend_thread_id text,
    ADD COLUMN IF NOT EXISTS steel_session_id text,
    ADD COLUMN IF NOT EXISTS created_at timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS workspace_id uuid
        REFERENCES public.workspaces (id) ON DELETE SET NULL,
    ADD COLUMN IF NOT EXISTS title text,
    ADD COLUMN IF NOT EXISTS instruction text,
    ADD COLUMN IF NOT EXISTS steel_session_viewer_url text,
    ADD COLUMN IF NOT EXISTS error_message text,
    ADD COLUMN IF NOT EXISTS result jsonb,
    ADD COLUMN IF NOT EXISTS started_at timestamptz,
    ADD COLUMN IF NOT EXISTS completed_at timestamptz,
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.add_foreign_key('public.jobs', 'jobs_user_id_fkey', '{user_id}',
    'public.profiles (id)');
SELECT pg_temp.add_unique('public.jobs', 'jobs_temporal_workflow_id_key',
    '{temporal_workflow_id}');
SELECT pg_temp.set_default('public.jobs', 'status', $$'pending'::text$$);
SELECT pg_temp.set_not_null('public.jobs', 'status');
SELECT pg_temp.add_status_check('public.jobs', 'jobs_status_check', 'status',
    '{pending,running,waiting_approval,completed,failed,cancelled}');
SELECT pg_temp.add_index('public.jobs', 'jobs_user_status_idx', 'USING btree (user_id, status)');

CREATE TABLE IF NOT EXISTS public.approvals (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id uuid REFERENCES public.jobs (id) ON DELETE CASCADE,
    action_type text, -- 'delete', 'update', 'payment'
    description text,
    screenshot_url text,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    resend_message_id text,
    decided_at timestamptz,
    -- Added: who must decide and by when; who decided, how and why.
    approver_email text,
    expires_at timestamptz,
    decided_by text,
    decision_channel text CHECK (decision_channel IN ('email', 'link', 'ui', 'cli')),
    decision_note text,
    -- Added: the RFC 5322 Message-ID of the request email, for threading later mail.
    email_message_id text,
    reminder_sent_at timestamptz,
    -- Added: bounce/complaint events about the request email.
    delivery_status text,
    delivery_event_at timestamptz,
    step_index integer,
    -- Added: the workflow that waits on this gate (where decisions are delivered).
    temporal_workflow_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.approvals
    ADD COLUMN IF NOT EXISTS job_id uuid,
    ADD COLUMN IF NOT EXISTS action_type text,
    ADD COLUMN IF NOT EXISTS description text,
    ADD COLUMN IF NOT EXISTS screenshot_url text,
    ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'pending',
    ADD COLUMN IF NOT EXISTS resend_message_id text,
    ADD COLUMN IF NOT EXISTS decided_at timestamptz,
    ADD COLUMN IF NOT EXISTS approver_email text,
    ADD COLUMN IF NOT EXISTS expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS decided_by text,
    ADD COLUMN IF NOT EXISTS decision_channel text
        CHECK (decision_channel IN ('email', 'link', 'ui', 'cli')),
    ADD COLUMN IF NOT EXISTS decision_note text,
    ADD COLUMN IF NOT EXISTS email_message_id text,
    ADD COLUMN IF NOT EXISTS reminder_sent_at timestamptz,
    ADD COLUMN IF NOT EXISTS delivery_status text,
    ADD COLUMN IF NOT EXISTS delivery_event_at timestamptz,
    ADD COLUMN IF NOT EXISTS step_index integer,
    ADD COLUMN IF NOT EXISTS temporal_workflow_id text,
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.add_foreign_key('public.approvals', 'approvals_job_id_fkey', '{job_id}',
    'public.jobs (id) ON DELETE CASCADE');
SELECT pg_temp.set_default('public.approvals', 'status', $$'pending'::text$$);
SELECT pg_temp.set_not_null('public.approvals', 'status');
SELECT pg_temp.add_status_check('public.approvals', 'approvals_status_check', 'status',
    '{pending,approved,rejected,expired,cancelled}');
SELECT pg_temp.add_index('public.approvals', 'approvals_job_idx', 'USING btree (job_id)');
SELECT pg_temp.add_index('public.approvals', 'approvals_pending_idx',
    $$USING btree (expires_at) WHERE (status = 'pending'::text)$$);

-- Added: one row per step of a job's plan, so progress survives anything.
CREATE TABLE IF NOT EXISTS public.job_steps (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id uuid NOT NULL REFERENCES public.jobs (id) ON DELETE CASCADE,
    step_index integer NOT NULL,
    description text NOT NULL DEFAULT '',
    action jsonb NOT NULL,
    risk text NOT NULL DEFAULT 'none' CHECK (risk IN ('none', 'delete', 'update', 'payment')),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped')),
    result jsonb,
    screenshot_ref text,
    error text,
    started_at timestamptz,
    finished_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, step_index)
);

-- The type is named in the schema pgvector is in (`extensions` on Supabase), so it
-- resolves whatever the session's search_path.
DO $$
DECLARE
    vector_schema text := (
        SELECT e.extnamespace::regnamespace::text FROM pg_extension e WHERE e.extname = 'vector'
    );
BEGIN
    IF to_regclass('public.memories') IS NULL THEN
        EXECUTE format($ddl$
            CREATE TABLE public.memories (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                user_id uuid REFERENCES public.profiles (id),
                content text NOT NULL,
                metadata jsonb,
                embedding %s.vector(1536),
                created_at timestamptz DEFAULT now(),
                -- Added: a retried "store memory" activity finds its row.
                idempotency_key text UNIQUE
            )
        $ddl$, vector_schema);
    ELSE
        EXECUTE format(
            'ALTER TABLE public.memories ADD COLUMN IF NOT EXISTS embedding %s.vector(1536)',
            vector_schema);
    END IF;
END
$$;
ALTER TABLE public.memories
    ADD COLUMN IF NOT EXISTS user_id uuid,
    ADD COLUMN IF NOT EXISTS metadata jsonb,
    ADD COLUMN IF NOT EXISTS created_at timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS idempotency_key text;
SELECT pg_temp.add_foreign_key('public.memories', 'memories_user_id_fkey', '{user_id}',
    'public.profiles (id)');
SELECT pg_temp.add_unique('public.memories', 'memories_idempotency_key_key',
    '{idempotency_key}');

-- Added: screenshots and other binary evidence; history and rows carry only ids.
CREATE TABLE IF NOT EXISTS public.blobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    content_type text NOT NULL,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

SELECT pg_temp.add_updated_at_trigger('public.profiles', 'profiles_updated_at');
SELECT pg_temp.add_updated_at_trigger('public.workspaces', 'workspaces_updated_at');
SELECT pg_temp.add_updated_at_trigger('public.jobs', 'jobs_updated_at');
SELECT pg_temp.add_updated_at_trigger('public.approvals', 'approvals_updated_at');
SELECT pg_temp.add_updated_at_trigger('public.job_steps', 'job_steps_updated_at');

INSERT INTO public.status_machine (entity, from_status, to_status) VALUES
    ('jobs', 'pending', 'running'),
    ('jobs', 'pending', 'failed'),
    ('jobs', 'pending', 'cancelled'),
    ('jobs', 'running', 'waiting_approval'),
    ('jobs', 'running', 'completed'),
    ('jobs', 'running', 'failed'),
    ('jobs', 'running', 'cancelled'),
    ('jobs', 'waiting_approval', 'running'),
    ('jobs', 'waiting_approval', 'failed'),
    ('jobs', 'waiting_approval', 'cancelled'),
    ('approvals', 'pending', 'approved'),
    ('approvals', 'pending', 'rejected'),
    ('approvals', 'pending', 'expired'),
    ('approvals', 'pending', 'cancelled')
ON CONFLICT DO NOTHING;

SELECT pg_temp.add_trigger('public.jobs', 'jobs_status_machine',
    'BEFORE INSERT OR UPDATE OF status ON public.jobs '
    'FOR EACH ROW EXECUTE FUNCTION public.enforce_status_machine(''pending'')');
SELECT pg_temp.add_trigger('public.jobs', 'jobs_status_log',
    'AFTER INSERT OR UPDATE OF status ON public.jobs '
    'FOR EACH ROW EXECUTE FUNCTION public.log_status_transition()');
SELECT pg_temp.add_trigger('public.approvals', 'approvals_status_machine',
    'BEFORE INSERT OR UPDATE OF status ON public.approvals '
    'FOR EACH ROW EXECUTE FUNCTION public.enforce_status_machine(''pending'')');
SELECT pg_temp.add_trigger('public.approvals', 'approvals_status_log',
    'AFTER INSERT OR UPDATE OF status ON public.approvals '
    'FOR EACH ROW EXECUTE FUNCTION public.log_status_transition()');

-- Row level security: each user sees only their own rows; the worker's role bypasses it.
SELECT pg_temp.enable_rls(t) FROM unnest(ARRAY[
    'public.profiles', 'public.workspaces', 'public.jobs', 'public.approvals',
    'public.job_steps', 'public.memories', 'public.blobs'
]::regclass[]) AS t;

SELECT pg_temp.add_policy('public.profiles', 'Users can read their own profile',
    'FOR SELECT TO authenticated USING (id = auth.uid())');
SELECT pg_temp.add_policy('public.profiles', 'Users can update their own profile',
    'FOR UPDATE TO authenticated USING (id = auth.uid()) WITH CHECK (id = auth.uid())');
SELECT pg_temp.add_policy('public.profiles', 'Users can insert their own profile',
    'FOR INSERT TO authenticated WITH CHECK (id = auth.uid())');
SELECT pg_temp.add_policy('public.workspaces', 'Users manage their own workspaces',
    'FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())');
SELECT pg_temp.add_policy('public.jobs', 'Users read their own jobs',
    'FOR SELECT TO authenticated USING (user_id = auth.uid())');
SELECT pg_temp.add_policy('public.approvals', 'Users read approvals of their own jobs',
    'FOR SELECT TO authenticated '
    'USING (job_id IN (SELECT id FROM public.jobs WHERE user_id = auth.uid()))');
SELECT pg_temp.add_policy('public.job_steps', 'Users read steps of their own jobs',
    'FOR SELECT TO authenticated '
    'USING (job_id IN (SELECT id FROM public.jobs WHERE user_id = auth.uid()))');
SELECT pg_temp.add_policy('public.memories', 'Users manage their own memories',
    'FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())');

GRANT SELECT, INSERT, UPDATE, DELETE ON public.profiles, public.workspaces, public.memories
    TO authenticated;
GRANT SELECT ON public.jobs, public.approvals, public.job_steps TO authenticated;
