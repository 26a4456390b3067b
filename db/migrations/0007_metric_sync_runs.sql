-- A backfill of one window keeps its workflow id (metric-sync-<connection>-backfill-<since>-<until>)
-- when it is run again, so a sync log is unique per workflow run, not per workflow id: every
-- run keeps its own audit row.
--
-- Rewritten in place (issue 25; earlier text accepted as applied, db/migrate.py
-- SUPERSEDED): an adopted seed 002 table never had the per-workflow key to drop.
ALTER TABLE public.metric_sync_logs ADD COLUMN IF NOT EXISTS temporal_run_id text;
ALTER TABLE public.metric_sync_logs
    DROP CONSTRAINT IF EXISTS metric_sync_logs_temporal_workflow_id_key;
SELECT pg_temp.add_unique('public.metric_sync_logs', 'metric_sync_logs_run_key',
    '{temporal_workflow_id,temporal_run_id}', true);
