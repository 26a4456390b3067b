-- A backfill of one window keeps its workflow id (metric-sync-<connection>-backfill-<since>-<until>)
-- when it is run again, so a sync log is unique per workflow run, not per workflow id: every
-- run keeps its own audit row.
ALTER TABLE public.metric_sync_logs ADD COLUMN temporal_run_id text;
ALTER TABLE public.metric_sync_logs DROP CONSTRAINT metric_sync_logs_temporal_workflow_id_key;
CREATE UNIQUE INDEX metric_sync_logs_run_key
    ON public.metric_sync_logs (temporal_workflow_id, temporal_run_id);
