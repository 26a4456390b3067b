-- name: open_rows
-- Rows not in a final state, each with the workflow (and, for a sync log, the run) that
-- owns it. A job's open steps come as one row, keyed by the job.
SELECT 'jobs' AS entity, id, temporal_workflow_id AS workflow_id, NULL::text AS run_id
FROM public.jobs
WHERE status IN ('pending', 'running', 'waiting_approval') AND temporal_workflow_id IS NOT NULL
UNION ALL
SELECT 'approvals', id, temporal_workflow_id, NULL
FROM public.approvals
WHERE status = 'pending' AND temporal_workflow_id IS NOT NULL
UNION ALL
SELECT DISTINCT 'job_steps', j.id, j.temporal_workflow_id, NULL::text
FROM public.job_steps s JOIN public.jobs j ON j.id = s.job_id
WHERE s.status IN ('pending', 'running') AND j.temporal_workflow_id IS NOT NULL
UNION ALL
SELECT 'generations', id, temporal_workflow_id, NULL
FROM public.generations
WHERE status IN ('pending', 'submitting', 'queued', 'in_progress')
  AND temporal_workflow_id IS NOT NULL
UNION ALL
SELECT 'metric_sync_logs', id, temporal_workflow_id, temporal_run_id
FROM public.metric_sync_logs
WHERE status = 'running' AND temporal_workflow_id IS NOT NULL
UNION ALL
-- A delivery is started right after its row is written (the raise retries until it is):
-- a row older than that whose workflow is not found was never started.
SELECT 'notification_queue', id, temporal_workflow_id, NULL
FROM public.notification_queue
WHERE NOT is_processed AND temporal_workflow_id IS NOT NULL
  AND created_at < now() - interval '10 minutes'

-- name: pending_approvals_of_job
-- The gates of a job still waiting for a decision.
SELECT id FROM public.approvals WHERE job_id = %(job_id)s AND status = 'pending'
