-- Seed 003: Higgsfield generations and the tables they reference. New tables reference
-- `profiles`; seed 003's own tables, when adopted, keep their references to its `users`
-- (0016 keeps a profile for each of its rows).
--
-- Adopts seed 003's tables where they exist, as 0003 does seed 000's (db/adopt.sql).
-- Rewritten in place (issue 25); its earlier text is accepted as applied (db/migrate.py,
-- SUPERSEDED): where it ran, this one would change nothing.

CREATE TABLE IF NOT EXISTS public.user_api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES public.profiles (id) ON DELETE CASCADE,
    service text NOT NULL CHECK (service IN ('elevenlabs', 'higgsfield', 'wavespeed')),
    encrypted_api_key text NOT NULL, -- AES-256-GCM, encrypted by the application
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, service)
);
ALTER TABLE public.user_api_keys
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.set_not_null('public.user_api_keys', c)
FROM unnest('{user_id,service,encrypted_api_key}'::text[]) AS c;
SELECT pg_temp.add_check('public.user_api_keys', 'user_api_keys_service_check',
    $$service = ANY (ARRAY['elevenlabs', 'higgsfield', 'wavespeed'])$$);
SELECT pg_temp.add_unique('public.user_api_keys', 'user_api_keys_user_id_service_key',
    '{user_id,service}');

CREATE TABLE IF NOT EXISTS public.ai_models (
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

CREATE TABLE IF NOT EXISTS public.assets (
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
ALTER TABLE public.assets
    ADD COLUMN IF NOT EXISTS metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.add_check('public.assets', 'assets_file_type_check',
    $$file_type = ANY (ARRAY['image', 'audio', 'video', 'document'])$$);
-- Added: a retried copy of a generation result finds its asset instead of adding one.
SELECT pg_temp.add_unique('public.assets', 'assets_file_path_key', '{file_path}', true);

CREATE TABLE IF NOT EXISTS public.prompts (
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

CREATE TABLE IF NOT EXISTS public.generations (
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
ALTER TABLE public.generations
    ADD COLUMN IF NOT EXISTS higgsfield_job_id text,
    ADD COLUMN IF NOT EXISTS model text NOT NULL DEFAULT 'soul',
    ADD COLUMN IF NOT EXISTS settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS result_urls text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS saved_asset_ids uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS error_message text,
    ADD COLUMN IF NOT EXISTS started_at timestamptz,
    ADD COLUMN IF NOT EXISTS completed_at timestamptz,
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS temporal_workflow_id text,
    ADD COLUMN IF NOT EXISTS batch_id uuid;
SELECT pg_temp.set_default('public.generations', 'status', $$'pending'::text$$);
SELECT pg_temp.set_not_null('public.generations', c)
FROM unnest('{user_id,prompt_text,status,model,settings,result_urls,saved_asset_ids}'::text[])
    AS c;
SELECT pg_temp.add_status_check('public.generations', 'generations_status_check', 'status',
    '{pending,submitting,queued,in_progress,completed,failed,nsfw,cancelled}');
SELECT pg_temp.add_unique('public.generations', 'generations_temporal_workflow_id_key',
    '{temporal_workflow_id}');
SELECT pg_temp.add_index('public.generations', 'generations_user_idx',
    'USING btree (user_id)');
SELECT pg_temp.add_index('public.generations', 'generations_user_status_idx',
    'USING btree (user_id, status)');
SELECT pg_temp.add_index('public.generations', 'generations_user_created_idx',
    'USING btree (user_id, created_at DESC)');

SELECT pg_temp.add_updated_at_trigger('public.user_api_keys', 'user_api_keys_updated_at');
SELECT pg_temp.add_updated_at_trigger('public.ai_models', 'ai_models_updated_at');
SELECT pg_temp.add_updated_at_trigger('public.assets', 'assets_updated_at');
SELECT pg_temp.add_updated_at_trigger('public.prompts', 'prompts_updated_at');
SELECT pg_temp.add_updated_at_trigger('public.generations', 'generations_updated_at');

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

SELECT pg_temp.add_trigger('public.generations', 'generations_status_machine',
    'BEFORE INSERT OR UPDATE OF status ON public.generations '
    'FOR EACH ROW EXECUTE FUNCTION public.enforce_status_machine(''pending'')');
SELECT pg_temp.add_trigger('public.generations', 'generations_status_log',
    'AFTER INSERT OR UPDATE OF status ON public.generations '
    'FOR EACH ROW EXECUTE FUNCTION public.log_status_transition()');

SELECT pg_temp.enable_rls(t) FROM unnest(ARRAY[
    'public.user_api_keys', 'public.ai_models', 'public.assets', 'public.prompts',
    'public.generations'
]::regclass[]) AS t;

SELECT pg_temp.add_policy('public.user_api_keys', 'Users manage their own API keys',
    'FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())');
SELECT pg_temp.add_policy('public.ai_models', 'Users manage their own AI models',
    'FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())');
SELECT pg_temp.add_policy('public.assets', 'Users manage their own assets',
    'FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())');
SELECT pg_temp.add_policy('public.prompts', 'Users manage their own prompts',
    'FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())');
SELECT pg_temp.add_policy('public.generations', 'Users manage their own generations',
    'FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())');

GRANT SELECT, INSERT, UPDATE, DELETE
    ON public.user_api_keys, public.ai_models, public.assets, public.prompts, public.generations
    TO authenticated;
