-- name: insert_job
-- Create the job row once; a retry finds the row it created.
-- Without an org_id the job goes to its owner's organization of one (0027's trigger).
INSERT INTO public.jobs
    (id, user_id, workspace_id, temporal_workflow_id, title, instruction, org_id)
VALUES (%(id)s, %(user_id)s, %(workspace_id)s, %(temporal_workflow_id)s, %(title)s,
        %(instruction)s, %(org_id)s)
ON CONFLICT (id) DO NOTHING

-- name: get_job
-- One job by id.
SELECT * FROM public.jobs WHERE id = %(id)s

-- name: list_jobs
-- Most recent jobs, optionally of one status and of one organization.
SELECT * FROM public.jobs
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(org_id)s::uuid IS NULL OR org_id = %(org_id)s)
ORDER BY created_at DESC
LIMIT %(limit)s

-- name: upsert_job_step
-- Record a step of the plan once (its description and action), before it runs.
INSERT INTO public.job_steps (job_id, step_index, description, action, risk)
VALUES (%(job_id)s, %(step_index)s, %(description)s, %(action)s, %(risk)s)
ON CONFLICT (job_id, step_index) DO NOTHING

-- name: mark_step_running
-- A step starts (again, after a crash: started_at keeps its first value).
UPDATE public.job_steps
SET status = 'running', started_at = coalesce(started_at, now()), error = NULL
WHERE job_id = %(job_id)s AND step_index = %(step_index)s AND status IN ('pending', 'running')
RETURNING *

-- name: finish_step
-- A step ends: completed, failed or skipped, with its result, screenshot and error.
UPDATE public.job_steps
SET status = %(status)s, result = %(result)s, screenshot_ref = %(screenshot_ref)s,
    error = %(error)s, finished_at = now()
WHERE job_id = %(job_id)s AND step_index = %(step_index)s
  AND status IN ('pending', 'running')
RETURNING *

-- name: close_open_steps
-- A job ended: steps that never ran are skipped, one cut off while running failed.
UPDATE public.job_steps
SET status = CASE status WHEN 'pending' THEN 'skipped' ELSE 'failed' END,
    error = coalesce(error, %(reason)s), finished_at = now()
WHERE job_id = %(job_id)s AND status IN ('pending', 'running')

-- name: get_step
-- One step of a job.
SELECT * FROM public.job_steps WHERE job_id = %(job_id)s AND step_index = %(step_index)s

-- name: list_steps
-- All steps of a job in plan order.
SELECT * FROM public.job_steps WHERE job_id = %(job_id)s ORDER BY step_index

-- name: job_context
-- The user and workspace a new job runs for; both must exist and match.
SELECT p.id AS user_id, w.id AS workspace_id, w.platform_name, w.browser_settings, w.is_active
FROM public.profiles p
LEFT JOIN public.workspaces w ON w.id = %(workspace_id)s AND w.user_id = p.id
WHERE p.id = %(user_id)s

-- name: reserve_browser_session
-- Keep the first session id reserved for the job; a retry finds the same one.
UPDATE public.jobs SET steel_session_id = coalesce(steel_session_id, %(session_id)s)
WHERE id = %(id)s
RETURNING steel_session_id

-- name: replace_browser_session
-- The job's session expired: the new one replaces it.
UPDATE public.jobs SET steel_session_id = %(session_id)s, steel_session_viewer_url = NULL
WHERE id = %(id)s

-- name: set_session_viewer
-- The live view operators can open.
UPDATE public.jobs SET steel_session_viewer_url = %(viewer_url)s
WHERE id = %(id)s AND steel_session_id = %(session_id)s

-- name: is_org_member
-- Whether the user is a member of the organization.
SELECT EXISTS (
    SELECT 1 FROM public.team_members WHERE org_id = %(org_id)s AND user_id = %(user_id)s
) AS member
