-- Rows not yet in a final state. A few per running workflow at any time, however large
-- the tables grow: the sweep that closes rows whose workflow ended without closing them
-- (terminated, timed out) reads them every reconcile, and a generation that frees a
-- concurrency slot looks up the user's oldest waiting generation.
CREATE INDEX jobs_open_idx ON public.jobs (temporal_workflow_id)
    WHERE status IN ('pending', 'running', 'waiting_approval');
CREATE INDEX job_steps_open_idx ON public.job_steps (job_id)
    WHERE status IN ('pending', 'running');
CREATE INDEX generations_open_idx ON public.generations (user_id, created_at)
    WHERE status IN ('pending', 'submitting', 'queued', 'in_progress');
CREATE INDEX metric_sync_logs_running_idx ON public.metric_sync_logs (temporal_workflow_id)
    WHERE status = 'running';
