-- name: lock_approval
-- The approval, locked while its approvers change (one change at a time per gate).
SELECT * FROM public.approvals WHERE id = %(id)s FOR UPDATE

-- name: approval_route
-- The route of the approval's organization for its action type ('*' when none names it).
SELECT r.approver_roles, r.quorum, r.escalate_after_seconds
FROM public.approvals a
JOIN public.approval_routes r
    ON r.org_id = a.org_id AND r.action_type IN (coalesce(a.action_type, '*'), '*')
WHERE a.id = %(id)s
ORDER BY (r.action_type = '*')
LIMIT 1

-- name: route_members
-- Members of the approval's organization in one of these roles, by the address Supabase
-- Auth verified (profiles.email_address is the user's to write).
SELECT lower(u.email) AS email, m.user_id
FROM public.approvals a
JOIN public.team_members m ON m.org_id = a.org_id
JOIN auth.users u ON u.id = m.user_id
WHERE a.id = %(id)s AND m.role = ANY(%(roles)s::text[]) AND coalesce(u.email, '') <> ''
ORDER BY m.created_at, m.user_id

-- name: escalation_candidates
-- Whom an escalation asks: the organization's backup approvers not asked yet, else its
-- admins not asked yet.
SELECT lower(u.email) AS email, m.user_id,
       CASE WHEN m.backup_approver THEN 'backup' ELSE 'admin' END AS tier
FROM public.approvals a
JOIN public.team_members m ON m.org_id = a.org_id
JOIN auth.users u ON u.id = m.user_id
WHERE a.id = %(id)s AND (m.backup_approver OR m.role = 'admin')
  AND coalesce(u.email, '') <> ''
  AND lower(u.email) NOT IN (SELECT x.email FROM public.approval_approvers x
                             WHERE x.approval_id = a.id)
ORDER BY m.backup_approver DESC, m.created_at, m.user_id

-- name: member_by_email
-- A member of the approval's organization by their verified address, with their role.
SELECT lower(u.email) AS email, m.user_id, m.role
FROM public.approvals a
JOIN public.team_members m ON m.org_id = a.org_id
JOIN auth.users u ON u.id = m.user_id
WHERE a.id = %(id)s AND lower(u.email) = %(email)s

-- name: insert_approver
-- Ask one more person (the next seat); nothing if they are asked already.
INSERT INTO public.approval_approvers
    (approval_id, seat, org_id, email, user_id, asked_because, escalation, delegated_from)
SELECT a.id,
       (SELECT coalesce(max(x.seat) + 1, 0) FROM public.approval_approvers x
        WHERE x.approval_id = a.id),
       a.org_id, %(email)s, %(user_id)s, %(asked_because)s, %(escalation)s,
       %(delegated_from)s
FROM public.approvals a
WHERE a.id = %(id)s
ON CONFLICT (approval_id, email) DO NOTHING
RETURNING *

-- name: list_approvers
-- Everyone asked to decide an approval, in the order they were asked.
SELECT * FROM public.approval_approvers WHERE approval_id = %(id)s ORDER BY seat

-- name: get_approver
-- One seat of an approval.
SELECT * FROM public.approval_approvers WHERE approval_id = %(id)s AND seat = %(seat)s

-- name: set_gate_plan
-- The first approver and the quorum of a gate being opened.
UPDATE public.approvals SET approver_email = %(approver_email)s, quorum = %(quorum)s
WHERE id = %(id)s
RETURNING *

-- name: withdraw_approver
-- The approver handed the decision on: they no longer vote.
UPDATE public.approval_approvers SET withdrawn_at = coalesce(withdrawn_at, now())
WHERE approval_id = %(id)s AND email = %(email)s
RETURNING *

-- name: get_escalation
-- An escalation of a gate by its number.
SELECT * FROM public.approval_escalations WHERE approval_id = %(id)s AND number = %(number)s

-- name: insert_escalation
-- Record an escalation (event approval_escalated) once.
INSERT INTO public.approval_escalations (approval_id, number, org_id, cause, reason, tier, asked)
SELECT a.id, %(number)s, a.org_id, %(cause)s, %(reason)s, %(tier)s, %(asked)s::text[]
FROM public.approvals a
WHERE a.id = %(id)s
ON CONFLICT (approval_id, number) DO NOTHING
RETURNING *

-- name: list_escalations
-- A gate's escalations, oldest first.
SELECT * FROM public.approval_escalations WHERE approval_id = %(id)s ORDER BY number

-- name: insert_vote
-- One approver's vote; the first one per approver stands.
INSERT INTO public.approval_votes (approval_id, org_id, voter, decision, channel, note)
SELECT a.id, a.org_id, %(voter)s, %(decision)s, %(channel)s, %(note)s
FROM public.approvals a
WHERE a.id = %(id)s
ON CONFLICT (approval_id, voter) DO NOTHING

-- name: list_votes
-- A gate's votes, in the order they came.
SELECT * FROM public.approval_votes WHERE approval_id = %(id)s ORDER BY voted_at, id

-- name: record_approver_email
-- The request email to one approver left: Resend's id and the Message-ID.
UPDATE public.approval_approvers
SET resend_message_id = %(resend_message_id)s, email_message_id = %(email_message_id)s
WHERE approval_id = %(id)s AND seat = %(seat)s
RETURNING *

-- name: record_approver_reminder
-- The reminder to one approver left.
UPDATE public.approval_approvers SET reminder_sent_at = coalesce(reminder_sent_at, now())
WHERE approval_id = %(id)s AND seat = %(seat)s

-- name: record_approver_delivery_event
-- A bounce or complaint about the email to one approver: by its Resend id, or by the
-- approval and seat it was tagged with.
UPDATE public.approval_approvers
SET delivery_status = %(delivery_status)s, delivery_event_at = now()
WHERE resend_message_id = %(resend_message_id)s
   OR (approval_id = %(approval_id)s::uuid AND seat = %(seat)s::integer)
RETURNING *

-- name: approval_owner
-- The job's owner when the approval's approver is their own profile address.
SELECT j.user_id FROM public.approvals a
JOIN public.jobs j ON j.id = a.job_id
JOIN public.profiles p ON p.id = j.user_id
WHERE a.id = %(id)s AND lower(p.email_address) = lower(a.approver_email)
