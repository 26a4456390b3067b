-- Approvals decided by a team (issue 27): several approvers per gate, each with their own
-- signed links and reply address; a quorum of distinct approvals; every vote, every
-- escalation and every delegation recorded. The worker writes all of it; members of the
-- approval's organization read it.

ALTER TABLE public.approvals
    -- How many distinct approvals decide the gate (a reject by any approver rejects).
    ADD COLUMN quorum integer NOT NULL DEFAULT 1 CHECK (quorum BETWEEN 1 AND 10);

-- Who is asked: seat 0 is approvals.approver_email; later seats came from the route,
-- an escalation or a delegation. A delegated seat is withdrawn: its holder no longer votes.
CREATE TABLE public.approval_approvers (
    approval_id uuid NOT NULL REFERENCES public.approvals (id) ON DELETE CASCADE,
    seat integer NOT NULL CHECK (seat >= 0),
    org_id uuid REFERENCES public.organizations (id) ON DELETE CASCADE,
    email text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    user_id uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    asked_because text NOT NULL
        CHECK (asked_because IN ('owner', 'route', 'escalation', 'delegation')),
    escalation integer,       -- the escalation that asked them
    delegated_from text,      -- who handed them the decision
    withdrawn_at timestamptz, -- they handed it on
    resend_message_id text,
    email_message_id text,
    reminder_sent_at timestamptz,
    delivery_status text,
    delivery_event_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (approval_id, seat),
    UNIQUE (approval_id, email)
);
CREATE INDEX approval_approvers_message_idx ON public.approval_approvers (resend_message_id)
    WHERE resend_message_id IS NOT NULL;

-- One vote per approver and gate: the first one stands.
CREATE TABLE public.approval_votes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    approval_id uuid NOT NULL REFERENCES public.approvals (id) ON DELETE CASCADE,
    org_id uuid REFERENCES public.organizations (id) ON DELETE CASCADE,
    voter text NOT NULL CHECK (voter = lower(voter) AND voter <> ''),
    decision text NOT NULL CHECK (decision IN ('approve', 'reject')),
    channel text NOT NULL CHECK (channel IN ('email', 'link', 'ui', 'cli', 'app')),
    note text,
    voted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (approval_id, voter)
);

-- Each escalation of a gate (event approval_escalated): why, and whom it asked next.
-- The notifications of issue 27 §3 read these rows.
CREATE TABLE public.approval_escalations (
    approval_id uuid NOT NULL REFERENCES public.approvals (id) ON DELETE CASCADE,
    number integer NOT NULL CHECK (number >= 1),
    org_id uuid REFERENCES public.organizations (id) ON DELETE CASCADE,
    event text NOT NULL DEFAULT 'approval_escalated' CHECK (event = 'approval_escalated'),
    cause text NOT NULL CHECK (cause IN ('bounced', 'complained', 'no_decision')),
    reason text NOT NULL,
    tier text NOT NULL CHECK (tier IN ('backup', 'admin', 'none')),
    asked text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (approval_id, number)
);

SELECT pg_temp.enable_rls(t) FROM unnest(ARRAY[
    'public.approval_approvers', 'public.approval_votes', 'public.approval_escalations'
]::regclass[]) AS t;
REVOKE ALL ON public.approval_approvers, public.approval_votes, public.approval_escalations
    FROM anon, authenticated;
GRANT SELECT ON public.approval_approvers, public.approval_votes, public.approval_escalations
    TO authenticated;
CREATE POLICY "Members read their organizations' approvers" ON public.approval_approvers
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Members read their organizations' votes" ON public.approval_votes
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Members read their organizations' escalations" ON public.approval_escalations
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));
