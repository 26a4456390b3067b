-- Seed 003 (shared/seeds/003_*.txt), its tables as the seed's column tables describe them
-- (name, type, default, and the notes' keys, checks, cascades, indexes, triggers and
-- RLS), as the app's own migrations would create them on Supabase: run as the project's
-- role. tests/supabase/test_seed_adoption.py checks every column against the seed file.

CREATE TABLE public.users (
    id UUID PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    email TEXT,
    name TEXT,
    subscription_tier TEXT DEFAULT 'free',
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE public.user_api_keys (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID REFERENCES public.users (id) ON DELETE CASCADE,
    service TEXT,
    encrypted_api_key TEXT,
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now(),
    UNIQUE (user_id, service)
);

CREATE TABLE public.ai_models (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID REFERENCES public.users (id) ON DELETE CASCADE,
    name TEXT,
    description TEXT DEFAULT '',
    voice_id TEXT DEFAULT '',
    voice_settings JSONB DEFAULT '{"stability":0.5,"similarity_boost":0.75,"style":0}',
    reference_image_ids UUID[] DEFAULT '{}',
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE public.assets (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID REFERENCES public.users (id) ON DELETE CASCADE,
    filename TEXT,
    file_path TEXT,
    file_type TEXT CHECK (file_type IN ('image', 'audio', 'video', 'document')),
    mime_type TEXT,
    file_size BIGINT,
    tags TEXT[] DEFAULT '{}',
    is_favorite BOOLEAN DEFAULT false,
    ai_model_id UUID REFERENCES public.ai_models (id) ON DELETE SET NULL,
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE public.prompts (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID REFERENCES public.users (id) ON DELETE CASCADE,
    model_id UUID REFERENCES public.ai_models (id) ON DELETE SET NULL,
    source_image_id UUID REFERENCES public.assets (id) ON DELETE SET NULL,
    prompt_text TEXT,
    prompt_index INT DEFAULT 0,
    variation_label TEXT DEFAULT '',
    is_edited BOOLEAN DEFAULT false,
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE public.generations (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID REFERENCES public.users (id) ON DELETE CASCADE,
    prompt_id UUID REFERENCES public.prompts (id) ON DELETE SET NULL,
    prompt_text TEXT,
    status TEXT DEFAULT 'pending' CHECK (status IN ('pending', 'submitting', 'queued',
        'in_progress', 'completed', 'failed', 'nsfw', 'cancelled')),
    higgsfield_job_id TEXT DEFAULT null,
    model TEXT DEFAULT 'soul',
    settings JSONB DEFAULT '{}',
    result_urls TEXT[] DEFAULT '{}',
    saved_asset_ids UUID[] DEFAULT '{}',
    error_message TEXT DEFAULT null,
    started_at TIMESTAMPTZ DEFAULT null,
    completed_at TIMESTAMPTZ DEFAULT null,
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now()
);
CREATE TABLE public.threads_accounts (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID REFERENCES public.users (id) ON DELETE CASCADE,
    threads_user_id TEXT,
    username TEXT DEFAULT '',
    profile_pic_url TEXT DEFAULT '',
    access_token TEXT,
    token_expires_at TIMESTAMPTZ,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now(),
    UNIQUE (user_id, threads_user_id)
);

CREATE INDEX idx_generations_user_id ON public.generations (user_id);
CREATE INDEX idx_generations_user_status ON public.generations (user_id, status);
CREATE INDEX idx_generations_user_created ON public.generations (user_id, created_at DESC);

-- Triggers: handle_new_user() and update_updated_at().
CREATE FUNCTION public.handle_new_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO public.users (id, email, name)
    VALUES (NEW.id, NEW.email, NEW.raw_user_meta_data ->> 'name');
    RETURN NEW;
END
$$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();

CREATE FUNCTION public.update_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END
$$;
CREATE TRIGGER update_users_updated_at BEFORE UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER update_user_api_keys_updated_at BEFORE UPDATE ON public.user_api_keys
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER update_assets_updated_at BEFORE UPDATE ON public.assets
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER update_ai_models_updated_at BEFORE UPDATE ON public.ai_models
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER update_prompts_updated_at BEFORE UPDATE ON public.prompts
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER update_generations_updated_at BEFORE UPDATE ON public.generations
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER update_threads_accounts_updated_at BEFORE UPDATE ON public.threads_accounts
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();

-- RLS on every table; users reach their own rows only.
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own row" ON public.users FOR SELECT USING (auth.uid() = id);
CREATE POLICY "Users can update own row" ON public.users FOR UPDATE USING (auth.uid() = id);
CREATE POLICY "Users can insert own row" ON public.users
    FOR INSERT WITH CHECK (auth.uid() = id);
ALTER TABLE public.user_api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users own their api keys" ON public.user_api_keys
    FOR ALL USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
ALTER TABLE public.assets ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users own their assets" ON public.assets
    FOR ALL USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
ALTER TABLE public.ai_models ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users own their ai models" ON public.ai_models
    FOR ALL USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
ALTER TABLE public.prompts ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users own their prompts" ON public.prompts
    FOR ALL USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
ALTER TABLE public.generations ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users own their generations" ON public.generations
    FOR ALL USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
ALTER TABLE public.threads_accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users own their threads accounts" ON public.threads_accounts
    FOR ALL USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
