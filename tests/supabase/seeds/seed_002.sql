-- Seed 002 (shared/seeds/002_*.txt): the three tables of its "Performance & Analytics"
-- part and its notification_queue, as its column tables describe them, run as the
-- project's role. notification_queue's config_id names seed 002's notification_config,
-- not laid down here: a plain id. The seed's
-- `assets` and `requests` (targets of performance_metrics' asset_id and request_id) are
-- not part of this system, so those two stay plain ids here; created_by references the
-- user who connected (auth.users, as the seed's other created_by columns do).
-- tests/supabase/test_seed_adoption.py checks every column against the seed file.

CREATE TABLE public.platform_connections (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    platform VARCHAR(50),
    credentials JSONB,
    account_id VARCHAR(255),
    account_name VARCHAR(255),
    is_active BOOLEAN DEFAULT true,
    last_synced_at TIMESTAMPTZ,
    sync_frequency INTEGER DEFAULT 1440,
    created_at TIMESTAMPTZ DEFAULT now(),
    created_by UUID REFERENCES auth.users (id)
);

CREATE TABLE public.performance_metrics (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    asset_id UUID,
    request_id UUID,
    platform VARCHAR(50),
    metric_type VARCHAR(50),
    value NUMERIC,
    date DATE,
    source VARCHAR(50),
    source_detail JSONB,
    sync_id UUID,
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE public.metric_sync_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    platform_connection_id UUID REFERENCES public.platform_connections (id),
    status VARCHAR(50),
    start_time TIMESTAMPTZ,
    end_time TIMESTAMPTZ,
    metrics_updated INTEGER,
    metrics_created INTEGER,
    error_message TEXT,
    details JSONB
);

CREATE TABLE public.notification_queue (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    config_id UUID,
    entity_id UUID,
    entity_type VARCHAR(50),
    event_data JSONB,
    is_processed BOOLEAN DEFAULT false,
    attempts INTEGER DEFAULT 0,
    max_attempts INTEGER DEFAULT 5,
    next_attempt_at TIMESTAMPTZ,
    last_error TEXT,
    created_at TIMESTAMPTZ DEFAULT now(),
    processed_at TIMESTAMPTZ
);
-- The seed's own index ("Indexes & Performance Optimization"); 0029 keeps it as it is.
CREATE INDEX notification_queue_processing_idx ON public.notification_queue
    (is_processed, next_attempt_at) WHERE is_processed = FALSE;
