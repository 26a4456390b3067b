-- Seed 002: ad-platform connections, their metrics and the log of each sync.
--
-- Adopts seed 002's tables where they exist, as 0003 does seed 000's (db/adopt.sql).
-- Rewritten in place (issue 25); its earlier text is accepted as applied (db/migrate.py,
-- SUPERSEDED): where it ran, this one would change nothing.

CREATE TABLE IF NOT EXISTS public.platform_connections (
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
ALTER TABLE public.platform_connections
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.set_default('public.platform_connections', 'credentials', $$'{}'::jsonb$$);
SELECT pg_temp.set_default('public.platform_connections', 'is_active', 'true');
SELECT pg_temp.set_default('public.platform_connections', 'sync_frequency', '1440');
SELECT pg_temp.set_default('public.platform_connections', 'created_at', 'now()');
SELECT pg_temp.set_not_null('public.platform_connections', c)
FROM unnest('{platform,credentials,account_id,is_active,sync_frequency,created_at}'::text[])
    AS c;
SELECT pg_temp.add_check('public.platform_connections',
    'platform_connections_sync_frequency_check', 'sync_frequency > 0');

DO $$
BEGIN
    IF to_regclass('public.performance_metrics') IS NULL THEN
        CREATE TABLE public.performance_metrics (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            -- Seed 002's asset and request tables are not part of this system: plain ids.
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
            -- Added: which connection and which campaign/ad the value is for; with
            -- platform, metric_type and date these form the natural key that makes
            -- re-syncs idempotent.
            platform_connection_id uuid
                REFERENCES public.platform_connections (id) ON DELETE CASCADE,
            entity_id text NOT NULL DEFAULT ''
        );
        CREATE UNIQUE INDEX performance_metrics_natural_key
            ON public.performance_metrics (platform_connection_id, entity_id, metric_type, date)
            NULLS NOT DISTINCT;
    END IF;
    -- An adopted table holds the app's own rows (manual entries, other syncs), which
    -- have no connection and may share a metric and a date: the natural key of synced
    -- rows is added by 0017 for rows with a connection only.
END
$$;
ALTER TABLE public.performance_metrics
    ADD COLUMN IF NOT EXISTS source_detail jsonb,
    ADD COLUMN IF NOT EXISTS sync_id uuid,
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS platform_connection_id uuid
        REFERENCES public.platform_connections (id) ON DELETE CASCADE,
    ADD COLUMN IF NOT EXISTS entity_id text NOT NULL DEFAULT '';
SELECT pg_temp.set_default('public.performance_metrics', 'source', $$'manual_entry'::varchar$$);

CREATE TABLE IF NOT EXISTS public.metric_sync_logs (
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
ALTER TABLE public.metric_sync_logs
    ADD COLUMN IF NOT EXISTS window_start timestamptz,
    ADD COLUMN IF NOT EXISTS window_end timestamptz,
    -- Unique per workflow run, not per workflow id (0007).
    ADD COLUMN IF NOT EXISTS temporal_workflow_id text;
SELECT pg_temp.set_default('public.metric_sync_logs', c, d)
FROM (VALUES ('start_time', 'now()'), ('metrics_updated', '0'), ('metrics_created', '0'),
             ('details', $$'{}'::jsonb$$)) AS v (c, d);
SELECT pg_temp.set_not_null('public.metric_sync_logs', c)
FROM unnest('{status,start_time,metrics_updated,metrics_created,details}'::text[]) AS c;
SELECT pg_temp.add_status_check('public.metric_sync_logs', 'metric_sync_logs_status_check',
    'status', '{running,success,partial,failed}');
SELECT pg_temp.add_index('public.metric_sync_logs', 'metric_sync_logs_connection_idx',
    'USING btree (platform_connection_id, start_time DESC)');

SELECT pg_temp.add_updated_at_trigger('public.platform_connections',
    'platform_connections_updated_at');
SELECT pg_temp.add_updated_at_trigger('public.performance_metrics',
    'performance_metrics_updated_at');

SELECT pg_temp.enable_rls(t) FROM unnest(ARRAY[
    'public.platform_connections', 'public.performance_metrics', 'public.metric_sync_logs'
]::regclass[]) AS t;

SELECT pg_temp.add_policy('public.platform_connections', 'Users manage their own connections',
    'FOR ALL TO authenticated USING (created_by = auth.uid()) '
    'WITH CHECK (created_by = auth.uid())');
SELECT pg_temp.add_policy('public.performance_metrics',
    'Users read metrics of their own connections',
    'FOR SELECT TO authenticated USING (platform_connection_id IN '
    '(SELECT id FROM public.platform_connections WHERE created_by = auth.uid()))');
SELECT pg_temp.add_policy('public.metric_sync_logs',
    'Users read sync logs of their own connections',
    'FOR SELECT TO authenticated USING (platform_connection_id IN '
    '(SELECT id FROM public.platform_connections WHERE created_by = auth.uid()))');

GRANT SELECT, INSERT, UPDATE, DELETE ON public.platform_connections TO authenticated;
GRANT SELECT ON public.performance_metrics, public.metric_sync_logs TO authenticated;
