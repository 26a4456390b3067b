-- name: insert_approval
-- Open a gate once; a retry finds the row it created.
INSERT INTO public.approvals
    (id, job_id, action_type, description, screenshot_url, approver_email, expires_at,
     step_index, temporal_workflow_id)
SELECT %(id)s, %(job_id)s, %(action_type)s, %(description)s, %(screenshot_url)s,
       coalesce(%(approver_email)s, p.email_address), %(expires_at)s, %(step_index)s,
       %(temporal_workflow_id)s
FROM public.jobs j LEFT JOIN public.profiles p ON p.id = j.user_id
WHERE j.id = %(job_id)s
ON CONFLICT (id) DO NOTHING

-- name: get_approval
-- One approval by id.
SELECT * FROM public.approvals WHERE id = %(id)s

-- name: get_approval_by_message
-- The approval whose request email has this Resend id.
SELECT * FROM public.approvals WHERE resend_message_id = %(resend_message_id)s

-- name: list_approvals
-- Approvals, pending first then newest, optionally of one status and one organization.
SELECT * FROM public.approvals
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(org_id)s::uuid IS NULL OR org_id = %(org_id)s)
ORDER BY (status = 'pending') DESC, created_at DESC
LIMIT %(limit)s

-- name: record_request_email
-- The request email left: keep Resend's id and the Message-ID for threading.
UPDATE public.approvals
SET resend_message_id = %(resend_message_id)s, email_message_id = %(email_message_id)s
WHERE id = %(id)s
RETURNING *

-- name: record_reminder
-- The reminder email left.
UPDATE public.approvals SET reminder_sent_at = coalesce(reminder_sent_at, now())
WHERE id = %(id)s
RETURNING *

-- name: record_delivery_event
-- A bounce or complaint about an approval email: by its Resend id, or by the approval id
-- it was tagged with (a bounce may come before the id is recorded).
UPDATE public.approvals
SET delivery_status = %(delivery_status)s, delivery_event_at = now()
WHERE resend_message_id = %(resend_message_id)s
   OR id = %(approval_id)s::uuid
RETURNING *

-- name: job_thread
-- Earlier mail of the same job, oldest first, for References/In-Reply-To.
SELECT email_message_id FROM public.approvals
WHERE job_id = %(job_id)s AND email_message_id IS NOT NULL AND id <> %(id)s
ORDER BY created_at

-- name: set_job_thread
-- The job's mail thread is the first request email's Message-ID.
UPDATE public.jobs SET last_resend_thread_id = %(thread_id)s WHERE id = %(job_id)s

-- name: email_context
-- Everything the request email says: the approval, its job, platform and owner.
SELECT a.id, a.job_id, a.action_type, a.description, a.screenshot_url, a.status,
       a.approver_email, a.expires_at, a.resend_message_id, a.email_message_id,
       j.title AS job_title, coalesce(w.platform_name, 'the platform') AS platform,
       p.full_name AS owner_name
FROM public.approvals a
JOIN public.jobs j ON j.id = a.job_id
LEFT JOIN public.workspaces w ON w.id = j.workspace_id
LEFT JOIN public.profiles p ON p.id = j.user_id
WHERE a.id = %(id)s

-- name: decision_context
-- Everything the decision page shows: the gate, its job, platform and the person the
-- assistant works for.
SELECT a.id, a.job_id, a.action_type, a.description, a.screenshot_url, a.status,
       a.approver_email, a.expires_at, a.decided_at, a.decided_by, a.decision_channel,
       a.decision_note, a.temporal_workflow_id, a.created_at, a.resend_message_id,
       a.email_message_id, a.reminder_sent_at, a.delivery_status, a.step_index,
       j.title AS job_title, w.platform_name AS platform,
       p.full_name AS owner_name, p.email_address AS owner_email
FROM public.approvals a
LEFT JOIN public.jobs j ON j.id = a.job_id
LEFT JOIN public.workspaces w ON w.id = j.workspace_id
LEFT JOIN public.profiles p ON p.id = j.user_id
WHERE a.id = %(id)s
