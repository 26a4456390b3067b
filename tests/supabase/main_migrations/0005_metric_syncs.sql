-- Seed 002: ad-platform connections, their metrics and the log of each sync.

CREATE TABLE public.platform_connections (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    platform varchar(50) NOT NULL,
    credentials jsonb NOT NULL DEFAULT '{}'::jsonb, -- {"ciphertext": ...}: AES-256-GCM
    account_id varchar(255) NOT NULL,
    account_name varchar(255),
    is_active boolean NOT NULL DEFAULT true,
    last_synced_at timestamptz,
    sync_frequency integer NOT NULL DEFAULT 1440 CHECK (sync_frequency > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid REFERENCES public.profiles (id) ON DELETE SET NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.performance_metrics (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Seed 002's asset and request tables are not part of this system: kept as plain ids.
    asset_id uuid,
    request_id uuid,
    platform varchar(50) NOT NULL,
    metric_type varchar(50) NOT NULL,
    value numeric NOT NULL,
    date date NOT NULL,
    source varchar(50) NOT NULL DEFAULT 'manual_entry',
    source_detail jsonb,
    sync_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Added: which connection and which campaign/ad the value is for; with platform,
    -- metric_type and date these form the natural key that makes re-syncs idempotent.
    platform_connection_id uuid REFERENCES public.platform_connections (id) ON DELETE CASCADE,
    entity_id text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX performance_metrics_natural_key
    ON public.performance_metrics (platform_connection_id, entity_id, metric_type, date)
    NULLS NOT DISTINCT;

CREATE TABLE public.metric_sync_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    platform_connection_id uuid REFERENCES public.platform_connections (id) ON DELETE CASCADE,
    -- 'running' added: the row is opened when a sync starts and closed when it ends.
    status varchar(50) NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'success', 'partial', 'failed')),
    start_time timestamptz NOT NULL DEFAULT now(),
    end_time timestamptz,
    metrics_updated integer NOT NULL DEFAULT 0,
    metrics_created integer NOT NULL DEFAULT 0,
    error_message text,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Added: the window synced and the workflow run that did it.
    window_start timestamptz,
    window_end timestamptz,
    temporal_workflow_id text UNIQUE
);
CREATE INDEX metric_sync_logs_connection_idx
    ON public.metric_sync_logs (platform_connection_id, start_time DESC);

CREATE TRIGGER platform_connections_updated_at BEFORE UPDATE ON public.platform_connections
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
CREATE TRIGGER performance_metrics_updated_at BEFORE UPDATE ON public.performance_metrics
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();

ALTER TABLE public.platform_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.performance_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.metric_sync_logs ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Users manage their own connections" ON public.platform_connections
    FOR ALL TO authenticated USING (created_by = auth.uid()) WITH CHECK (created_by = auth.uid());
CREATE POLICY "Users read metrics of their own connections" ON public.performance_metrics
    FOR SELECT TO authenticated
    USING (platform_connection_id IN
           (SELECT id FROM public.platform_connections WHERE created_by = auth.uid()));
CREATE POLICY "Users read sync logs of their own connections" ON public.metric_sync_logs
    FOR SELECT TO authenticated
    USING (platform_connection_id IN
           (SELECT id FROM public.platform_connections WHERE created_by = auth.uid()));

GRANT SELECT, INSERT, UPDATE, DELETE ON public.platform_connections TO authenticated;
GRANT SELECT ON public.performance_metrics, public.metric_sync_logs TO authenticated;
