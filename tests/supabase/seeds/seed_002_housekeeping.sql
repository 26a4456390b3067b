-- Seed 002 (shared/seeds/002_*.txt): the tables of its "Automation & Workflows" and
-- "Audit & History" parts that retention works on, as its column tables describe them,
-- with the seed's own indexes ("Indexes & Performance Optimization"), run as the
-- project's role. activity_log.user_id references the acting user (auth.users). The
-- notification_queue retention also works on is seed_002.sql's. tests/housekeeping/ lays
-- these tables down (seed_002_table, from either file) where a test needs the app's.

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
