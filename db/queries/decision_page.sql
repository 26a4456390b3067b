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
