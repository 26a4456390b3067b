-- name: lock_new_job
-- A job the app inserted and no dispatcher has started yet, locked for this transaction;
-- nothing if another dispatcher holds it (it is starting it) or it is no longer new.
SELECT j.*, w.user_id AS workspace_owner, w.is_active AS workspace_active
FROM public.jobs j
LEFT JOIN public.workspaces w ON w.id = j.workspace_id
WHERE j.id = %(id)s AND j.status = 'pending' AND j.temporal_workflow_id IS NULL
FOR UPDATE OF j SKIP LOCKED

-- name: mark_job_dispatched
-- The job's workflow was started (or found started): the row names it from now on.
UPDATE public.jobs SET temporal_workflow_id = %(workflow_id)s WHERE id = %(id)s

-- name: lock_new_generation
-- A generation the app inserted and no dispatcher has started yet, with what its
-- validation needs (the stored prompt's text, whether the user has a Higgsfield key).
SELECT g.*, p.prompt_text AS stored_prompt_text, p.prompt_index,
       (k.user_id IS NOT NULL) AS has_key
FROM public.generations g
LEFT JOIN public.prompts p ON p.id = g.prompt_id AND p.user_id = g.user_id
LEFT JOIN public.user_api_keys k ON k.user_id = g.user_id AND k.service = 'higgsfield'
WHERE g.id = %(id)s AND g.status = 'pending' AND g.temporal_workflow_id IS NULL
FOR UPDATE OF g SKIP LOCKED

-- name: lock_batch_assembly
-- Only one transaction at a time looks at a batch's rows (the same lock the insert
-- trigger takes, so no row joins the batch while it is looked at); false if another holds
-- it, which will look at the batch itself.
SELECT pg_try_advisory_xact_lock(hashtextextended('generation-batch:' || %(batch_id)s::text, 0))
    AS locked

-- name: lock_batch
-- Every row of a batch, in prompt order (seed 003: prompt_index 0-4), locked.
SELECT g.*, p.prompt_text AS stored_prompt_text, p.prompt_index,
       (k.user_id IS NOT NULL) AS has_key,
       (g.created_at < now() - make_interval(secs => %(wait_seconds)s::float8)) AS waited_out
FROM public.generations g
LEFT JOIN public.prompts p ON p.id = g.prompt_id AND p.user_id = g.user_id
LEFT JOIN public.user_api_keys k ON k.user_id = g.user_id AND k.service = 'higgsfield'
WHERE g.batch_id = %(batch_id)s
ORDER BY p.prompt_index NULLS LAST, g.created_at, g.id
FOR UPDATE OF g

-- name: mark_generation_dispatched
-- The generation's workflow was started (or found started); its prompt text as validated
-- (a stored prompt's text where the row had none).
UPDATE public.generations SET temporal_workflow_id = %(workflow_id)s, prompt_text = %(prompt_text)s
WHERE id = %(id)s

-- name: lock_job_cancel
-- A job whose cancel the app requested and no dispatcher delivered yet.
SELECT * FROM public.jobs
WHERE id = %(id)s AND cancel_requested_at IS NOT NULL AND cancel_delivered_at IS NULL
FOR UPDATE SKIP LOCKED

-- name: lock_generation_cancel
-- A generation whose cancel the app requested and no dispatcher delivered yet.
SELECT * FROM public.generations
WHERE id = %(id)s AND cancel_requested_at IS NOT NULL AND cancel_delivered_at IS NULL
FOR UPDATE SKIP LOCKED

-- name: mark_job_cancel_delivered
-- The cancel reached Temporal (or there was nothing left to cancel).
UPDATE public.jobs
SET cancel_delivered_at = now(), temporal_workflow_id = coalesce(temporal_workflow_id, %(workflow_id)s)
WHERE id = %(id)s

-- name: mark_generation_cancel_delivered
-- The cancel reached Temporal (or there was nothing left to cancel); a batch's rows all
-- at once, since a batch is cancelled as a whole.
UPDATE public.generations
SET cancel_delivered_at = coalesce(cancel_delivered_at, now()),
    temporal_workflow_id = coalesce(temporal_workflow_id, %(workflow_id)s)
WHERE id = %(id)s

-- name: mark_batch_cancel_delivered
-- A batch is cancelled as a whole: every row of it has had its cancel delivered.
UPDATE public.generations SET cancel_delivered_at = coalesce(cancel_delivered_at, now())
WHERE batch_id = %(batch_id)s

-- name: undispatched
-- What the sweep starts: rows the app inserted that have no workflow yet, oldest first.
(SELECT 'jobs' AS entity, id, created_at FROM public.jobs
 WHERE temporal_workflow_id IS NULL AND status = 'pending'
 ORDER BY created_at LIMIT %(limit)s)
UNION ALL
(SELECT 'generations' AS entity, id, created_at FROM public.generations
 WHERE temporal_workflow_id IS NULL AND status = 'pending'
 ORDER BY created_at LIMIT %(limit)s)
ORDER BY created_at

-- name: cancels_undelivered
-- What the sweep cancels: cancel requests not yet delivered on unfinished rows.
(SELECT 'jobs' AS entity, id FROM public.jobs
 WHERE cancel_requested_at IS NOT NULL AND cancel_delivered_at IS NULL
   AND status IN ('pending', 'running', 'waiting_approval')
 ORDER BY cancel_requested_at LIMIT %(limit)s)
UNION ALL
(SELECT 'generations' AS entity, id FROM public.generations
 WHERE cancel_requested_at IS NOT NULL AND cancel_delivered_at IS NULL
   AND status IN ('pending', 'submitting', 'queued', 'in_progress')
 ORDER BY cancel_requested_at LIMIT %(limit)s)

-- name: cancels_unfinished
-- Rows whose cancel was delivered a while ago and that are not finished: the sweep asks
-- Temporal whether their workflow ended without recording it.
(SELECT 'jobs' AS entity, id, temporal_workflow_id, NULL::uuid AS batch_id FROM public.jobs
 WHERE cancel_delivered_at < now() - make_interval(secs => %(grace_seconds)s::float8)
   AND status IN ('pending', 'running', 'waiting_approval')
 LIMIT %(limit)s)
UNION ALL
(SELECT 'generations' AS entity, id, temporal_workflow_id, batch_id FROM public.generations
 WHERE cancel_delivered_at < now() - make_interval(secs => %(grace_seconds)s::float8)
   AND status IN ('pending', 'submitting', 'queued', 'in_progress')
 LIMIT %(limit)s)

-- name: generation_batch
-- Whether a generation belongs to a batch (the batch is dispatched as one).
SELECT batch_id, batch_size FROM public.generations WHERE id = %(id)s
