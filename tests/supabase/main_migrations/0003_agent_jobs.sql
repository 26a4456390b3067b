-- Seed 000: profiles, workspaces, jobs, approvals, memories; plus job_steps.
-- `profiles` is the one identity table of the project: seed 003 calls its user table
-- `users`; its columns (email, name, subscription_tier) map onto profiles
-- (email_address, full_name, subscription_tier) and its tables reference profiles.

CREATE TABLE public.profiles (
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

CREATE TABLE public.workspaces (
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

CREATE TABLE public.jobs (
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
CREATE INDEX jobs_user_status_idx ON public.jobs (user_id, status);

CREATE TABLE public.approvals (
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
CREATE INDEX approvals_job_idx ON public.approvals (job_id);
CREATE INDEX approvals_pending_idx ON public.approvals (expires_at) WHERE status = 'pending';

-- Added: one row per step of a job's plan, so progress survives anything.
CREATE TABLE public.job_steps (
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

CREATE TABLE public.memories (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid REFERENCES public.profiles (id),
    content text NOT NULL,
    metadata jsonb,
    embedding vector(1536),
    created_at timestamptz DEFAULT now(),
    -- Added: a retried "store memory" activity finds its row instead of adding one.
    idempotency_key text UNIQUE
);

-- Added: screenshots and other binary evidence; history and rows carry only ids.
CREATE TABLE public.blobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    content_type text NOT NULL,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER profiles_updated_at BEFORE UPDATE ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER workspaces_updated_at BEFORE UPDATE ON public.workspaces
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER jobs_updated_at BEFORE UPDATE ON public.jobs
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER approvals_updated_at BEFORE UPDATE ON public.approvals
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER job_steps_updated_at BEFORE UPDATE ON public.job_steps
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();

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

CREATE TRIGGER jobs_status_machine BEFORE INSERT OR UPDATE OF status ON public.jobs
    FOR EACH ROW EXECUTE FUNCTION public.enforce_status_machine('pending');
CREATE TRIGGER jobs_status_log AFTER INSERT OR UPDATE OF status ON public.jobs
    FOR EACH ROW EXECUTE FUNCTION public.log_status_transition();
CREATE TRIGGER approvals_status_machine BEFORE INSERT OR UPDATE OF status ON public.approvals
    FOR EACH ROW EXECUTE FUNCTION public.enforce_status_machine('pending');
CREATE TRIGGER approvals_status_log AFTER INSERT OR UPDATE OF status ON public.approvals
    FOR EACH ROW EXECUTE FUNCTION public.log_status_transition();

-- Row level security: each user sees only their own rows; the worker's role bypasses it.
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.workspaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.approvals ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.job_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.memories ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.blobs ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Users can read their own profile" ON public.profiles
    FOR SELECT TO authenticated USING (id = auth.uid());
CREATE POLICY "Users can update their own profile" ON public.profiles
    FOR UPDATE TO authenticated USING (id = auth.uid()) WITH CHECK (id = auth.uid());
CREATE POLICY "Users can insert their own profile" ON public.profiles
    FOR INSERT TO authenticated WITH CHECK (id = auth.uid());
CREATE POLICY "Users manage their own workspaces" ON public.workspaces
    FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY "Users read their own jobs" ON public.jobs
    FOR SELECT TO authenticated USING (user_id = auth.uid());
CREATE POLICY "Users read approvals of their own jobs" ON public.approvals
    FOR SELECT TO authenticated
    USING (job_id IN (SELECT id FROM public.jobs WHERE user_id = auth.uid()));
CREATE POLICY "Users read steps of their own jobs" ON public.job_steps
    FOR SELECT TO authenticated
    USING (job_id IN (SELECT id FROM public.jobs WHERE user_id = auth.uid()));
CREATE POLICY "Users manage their own memories" ON public.memories
    FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

GRANT SELECT, INSERT, UPDATE, DELETE ON public.profiles, public.workspaces, public.memories
    TO authenticated;
GRANT SELECT ON public.jobs, public.approvals, public.job_steps TO authenticated;
