-- Seed 002 (shared/seeds/002_*.txt): the tables of its "Automation & Workflows" and
-- "Audit & History" parts that retention works on, as its column tables describe them,
-- with the seed's own indexes ("Indexes & Performance Optimization"), run as the
-- project's role. notification_queue.config_id stays a plain id (notification_config is
-- not part of this system); activity_log.user_id references the acting user (auth.users).
-- tests/housekeeping/ lays these tables down (seed_002_table) where a test needs the app's.

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
CREATE INDEX notification_queue_processing_idx ON public.notification_queue
    (is_processed, next_attempt_at) WHERE is_processed = FALSE;

CREATE TABLE public.activity_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES auth.users (id),
    entity_type VARCHAR(50),
    entity_id UUID,
    action VARCHAR(50),
    details JSONB,
    created_at TIMESTAMPTZ DEFAULT now()
);
CREATE INDEX activity_created_idx ON public.activity_log (created_at);

CREATE TABLE public.archived_activity_log (
    id UUID PRIMARY KEY,
    user_id UUID,
    entity_type VARCHAR(50),
    entity_id UUID,
    action VARCHAR(50),
    details JSONB,
    created_at TIMESTAMPTZ,
    archived_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE public.retention_policies (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    entity_type VARCHAR(50),
    active_retention_days INTEGER,
    archive_retention_days INTEGER,
    last_archived_at TIMESTAMPTZ,
    last_purged_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now()
);
-- "Default Policies".
INSERT INTO public.retention_policies (entity_type, active_retention_days, archive_retention_days)
VALUES ('activity_log', 90, 365), ('notification_queue', 30, 90);
