-- Seed 003: Higgsfield generations and the tables they reference. Seed 003's `users`
-- table is `profiles` here (see 0003).

CREATE TABLE public.user_api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES public.profiles (id) ON DELETE CASCADE,
    service text NOT NULL CHECK (service IN ('elevenlabs', 'higgsfield', 'wavespeed')),
    encrypted_api_key text NOT NULL, -- AES-256-GCM, encrypted by the application
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, service)
);

CREATE TABLE public.ai_models (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES public.profiles (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    voice_id text NOT NULL DEFAULT '',
    voice_settings jsonb NOT NULL
        DEFAULT '{"stability": 0.5, "similarity_boost": 0.75, "style": 0}'::jsonb,
    reference_image_ids uuid[] NOT NULL DEFAULT '{}',
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.assets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES public.profiles (id) ON DELETE CASCADE,
    filename text NOT NULL,
    file_path text NOT NULL,
    file_type text NOT NULL CHECK (file_type IN ('image', 'audio', 'video', 'document')),
    mime_type text NOT NULL,
    file_size bigint NOT NULL,
    tags text[] NOT NULL DEFAULT '{}',
    is_favorite boolean NOT NULL DEFAULT false,
    ai_model_id uuid REFERENCES public.ai_models (id) ON DELETE SET NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Added: a retried copy of a generation result finds its asset instead of adding one.
CREATE UNIQUE INDEX assets_file_path_key ON public.assets (file_path);

CREATE TABLE public.prompts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES public.profiles (id) ON DELETE CASCADE,
    model_id uuid REFERENCES public.ai_models (id) ON DELETE SET NULL,
    source_image_id uuid REFERENCES public.assets (id) ON DELETE SET NULL,
    prompt_text text NOT NULL,
    prompt_index integer NOT NULL DEFAULT 0,
    variation_label text NOT NULL DEFAULT '',
    is_edited boolean NOT NULL DEFAULT false,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.generations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES public.profiles (id) ON DELETE CASCADE,
    prompt_id uuid REFERENCES public.prompts (id) ON DELETE SET NULL,
    prompt_text text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'submitting', 'queued', 'in_progress', 'completed',
                          'failed', 'nsfw', 'cancelled')),
    higgsfield_job_id text,
    model text NOT NULL DEFAULT 'soul',
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    result_urls text[] NOT NULL DEFAULT '{}',
    saved_asset_ids uuid[] NOT NULL DEFAULT '{}',
    error_message text,
    started_at timestamptz,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Added: the Temporal workflow that owns the row, and the batch (a parent workflow
    -- generation-batch-<batch_id>, one per request for several variations) it belongs to.
    temporal_workflow_id text UNIQUE,
    batch_id uuid
);
CREATE INDEX generations_user_idx ON public.generations (user_id);
CREATE INDEX generations_user_status_idx ON public.generations (user_id, status);
CREATE INDEX generations_user_created_idx ON public.generations (user_id, created_at DESC);

CREATE TRIGGER user_api_keys_updated_at BEFORE UPDATE ON public.user_api_keys
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER ai_models_updated_at BEFORE UPDATE ON public.ai_models
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER assets_updated_at BEFORE UPDATE ON public.assets
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER prompts_updated_at BEFORE UPDATE ON public.prompts
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER generations_updated_at BEFORE UPDATE ON public.generations
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();

-- Forward-only lifecycle; a stage may be skipped (a fast job is completed at its first
-- status read), but never revisited.
INSERT INTO public.status_machine (entity, from_status, to_status)
SELECT 'generations', f.s, t.s
FROM (VALUES ('pending', 1), ('submitting', 2), ('queued', 3), ('in_progress', 4)) AS f (s, n)
CROSS JOIN (VALUES ('submitting', 2), ('queued', 3), ('in_progress', 4), ('completed', 5),
                   ('failed', 5), ('nsfw', 5), ('cancelled', 5)) AS t (s, n)
WHERE t.n > f.n
  AND NOT (f.s = 'pending' AND t.s IN ('queued', 'in_progress', 'completed', 'nsfw'))
ON CONFLICT DO NOTHING;

CREATE TRIGGER generations_status_machine BEFORE INSERT OR UPDATE OF status
    ON public.generations
    FOR EACH ROW EXECUTE FUNCTION public.enforce_status_machine('pending');
CREATE TRIGGER generations_status_log AFTER INSERT OR UPDATE OF status ON public.generations
    FOR EACH ROW EXECUTE FUNCTION public.log_status_transition();

ALTER TABLE public.user_api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_models ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.assets ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.prompts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.generations ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Users manage their own API keys" ON public.user_api_keys
    FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY "Users manage their own AI models" ON public.ai_models
    FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY "Users manage their own assets" ON public.assets
    FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY "Users manage their own prompts" ON public.prompts
    FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY "Users manage their own generations" ON public.generations
    FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

GRANT SELECT, INSERT, UPDATE, DELETE
    ON public.user_api_keys, public.ai_models, public.assets, public.prompts, public.generations
    TO authenticated;
