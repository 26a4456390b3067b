-- name: list_organizations
-- Organizations with their member count, teams before organizations of one.
SELECT o.id, o.name, o.personal_for, count(m.user_id) AS members
FROM public.organizations o LEFT JOIN public.team_members m ON m.org_id = o.id
GROUP BY o.id
ORDER BY (o.personal_for IS NULL) DESC, o.created_at, o.id
LIMIT %(limit)s

-- name: create_organization
-- A team (its first admin is added by add_member).
INSERT INTO public.organizations (name) VALUES (%(name)s) RETURNING id, name, personal_for, 0 AS members

-- name: list_members
-- An organization's members, by the address Supabase Auth verified.
SELECT m.user_id, u.email, m.role, m.backup_approver
FROM public.team_members m JOIN auth.users u ON u.id = m.user_id
WHERE m.org_id = %(org_id)s
ORDER BY array_position(ARRAY['admin', 'manager', 'member'], m.role), u.email

-- name: upsert_member
-- Add a user (by address) to an organization, or change their role.
INSERT INTO public.team_members (org_id, user_id, role, backup_approver)
SELECT %(org_id)s, u.id, %(role)s, %(backup)s FROM auth.users u
WHERE lower(u.email) = lower(%(email)s)
ON CONFLICT (org_id, user_id) DO UPDATE
SET role = EXCLUDED.role, backup_approver = EXCLUDED.backup_approver
RETURNING user_id, %(email)s AS email, role, backup_approver

-- name: upsert_route
-- Set an organization's approval route for an action type.
INSERT INTO public.approval_routes (org_id, action_type, approver_roles, quorum,
                                    escalate_after_seconds)
VALUES (%(org_id)s, %(action_type)s, %(roles)s, %(quorum)s, %(escalate_after_seconds)s)
ON CONFLICT (org_id, action_type) DO UPDATE
SET approver_roles = EXCLUDED.approver_roles, quorum = EXCLUDED.quorum,
    escalate_after_seconds = EXCLUDED.escalate_after_seconds
RETURNING action_type, approver_roles, quorum, escalate_after_seconds

-- name: list_routes
-- An organization's approval routes.
SELECT action_type, approver_roles, quorum, escalate_after_seconds
FROM public.approval_routes WHERE org_id = %(org_id)s ORDER BY action_type
