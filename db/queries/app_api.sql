-- name: act_as_user
-- What PostgREST does at the start of a signed-in request's transaction: the user's role
-- and claims, so row level security and the column grants apply to what follows.
SET LOCAL ROLE authenticated

-- name: set_claims
-- The JWT claims auth.uid() reads, for this transaction.
SELECT set_config('request.jwt.claims', %(claims)s, true)

-- name: insert_job
-- The user's pending job with its plan; a replay (same derived id) inserts nothing.
INSERT INTO public.jobs (id, user_id, workspace_id, title, instruction, status, plan, org_id)
VALUES (%(id)s, %(user_id)s, %(workspace_id)s, %(title)s, %(instruction)s, 'pending', %(plan)s,
        %(org_id)s)
ON CONFLICT (id) DO NOTHING

-- name: insert_generation
-- The user's pending generation (of a batch, or not); a replay inserts nothing.
INSERT INTO public.generations
    (id, user_id, prompt_id, prompt_text, model, settings, status, batch_id, batch_size, org_id)
VALUES (%(id)s, %(user_id)s, %(prompt_id)s, %(prompt_text)s, %(model)s, %(settings)s,
        'pending', %(batch_id)s, %(batch_size)s, %(org_id)s)
ON CONFLICT (id) DO NOTHING

-- name: get_job
-- A job the user may see.
SELECT * FROM public.jobs WHERE id = %(id)s

-- name: job_steps
-- A job's steps in plan order.
SELECT step_index, description, risk, status, error FROM public.job_steps
WHERE job_id = %(job_id)s ORDER BY step_index

-- name: job_approvals
-- A job's approval gates, oldest first.
SELECT * FROM public.approvals WHERE job_id = %(job_id)s ORDER BY created_at

-- name: get_generation
-- A generation the user may see.
SELECT * FROM public.generations WHERE id = %(id)s

-- name: batch_generations
-- A batch's generations the user may see, in prompt order.
SELECT g.* FROM public.generations g
LEFT JOIN public.prompts p ON p.id = g.prompt_id
WHERE g.batch_id = %(batch_id)s
ORDER BY p.prompt_index NULLS LAST, g.created_at, g.id

-- name: request_job_cancel
-- The app's cancel request on the user's own job (stamped by the database, once).
UPDATE public.jobs SET cancel_requested_at = now() WHERE id = %(id)s RETURNING id

-- name: request_generation_cancel
-- The app's cancel request on the user's own generation.
UPDATE public.generations SET cancel_requested_at = now() WHERE id = %(id)s RETURNING id

-- name: get_approval
-- An approval of one of the user's jobs.
SELECT * FROM public.approvals WHERE id = %(id)s

-- name: approval_for_approver
-- An approval whose approver is this user (by the address Supabase Auth verified, not the
-- profile's, which users write themselves). Run as the worker.
-- Any approver asked to decide it counts (issue 27).
SELECT a.* FROM public.approvals a
JOIN auth.users u ON u.id = %(user_id)s
WHERE a.id = %(id)s
  AND (lower(u.email) = lower(a.approver_email)
       OR lower(u.email) IN (SELECT x.email FROM public.approval_approvers x
                             WHERE x.approval_id = a.id))

-- name: user_email
-- The user's address as Supabase Auth knows it. Run as the worker.
SELECT email FROM auth.users WHERE id = %(user_id)s

-- name: claim_idempotency_key
-- Remember a key for this user; nothing if it is known (then read it).
INSERT INTO public.api_idempotency_keys (user_id, key, request_hash)
VALUES (%(user_id)s, %(key)s, %(request_hash)s)
ON CONFLICT (user_id, key) DO NOTHING
RETURNING key

-- name: get_idempotency_key
-- A key's request and, once answered, its answer; keys older than a day are forgotten.
SELECT request_hash, status_code, response,
       created_at < now() - interval '24 hours' AS expired
FROM public.api_idempotency_keys
WHERE user_id = %(user_id)s AND key = %(key)s

-- name: forget_idempotency_key
-- An expired key may be used again.
DELETE FROM public.api_idempotency_keys
WHERE user_id = %(user_id)s AND key = %(key)s AND created_at < now() - interval '24 hours'

-- name: store_idempotency_response
-- The first answer to a key, returned to every replay.
UPDATE public.api_idempotency_keys
SET status_code = %(status_code)s, response = %(response)s, completed_at = now()
WHERE user_id = %(user_id)s AND key = %(key)s AND response IS NULL

-- name: release_idempotency_key
-- The request was refused or failed: forget the key unless it was answered, so a refused
-- request leaves nothing behind and may be sent again.
DELETE FROM public.api_idempotency_keys
WHERE user_id = %(user_id)s AND key = %(key)s AND response IS NULL

-- name: job_settled
-- The job was started (or refused) by a dispatcher.
SELECT 1 AS settled FROM public.jobs
WHERE id = %(id)s AND (temporal_workflow_id IS NOT NULL OR status <> 'pending')

-- name: generation_settled
-- The generation was started (or refused) by a dispatcher.
SELECT 1 AS settled FROM public.generations
WHERE id = %(id)s AND (temporal_workflow_id IS NOT NULL OR status <> 'pending')

-- name: approval_votes
-- The votes on an approval, in the order they came. Run as the worker, for an approval
-- the caller may see.
SELECT voter, decision, channel, note, voted_at FROM public.approval_votes
WHERE approval_id = %(id)s ORDER BY voted_at, id

-- name: seat_of_user
-- The address an approval asked this user at (their seat), if any. Run as the worker.
SELECT email FROM public.approval_approvers
WHERE approval_id = %(id)s AND user_id = %(user_id)s AND withdrawn_at IS NULL
ORDER BY seat
LIMIT 1
