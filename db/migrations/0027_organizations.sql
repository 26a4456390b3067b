-- Organizations and team members (issue 27, seed 004): agencies are teams. Seed 004 makes
-- `organizations` the root tenant, `team_members (org_id, user_id, role)` the membership
-- (roles of seed 001: admin, manager, member), and grants rows by membership:
--     USING (org_id IN (SELECT org_id FROM team_members WHERE user_id = auth.uid()))
-- From here on:
--   1. both tables exist (a seed 004 database's are adopted, as 0003 adopts seed 000's);
--      every profile has an organization of one (`personal_for`), where it is the admin;
--      a profile created later gets one too;
--   2. jobs, approvals, generations, platform_connections, performance_metrics and
--      metric_sync_logs carry `org_id`; the rows already there move to their owner's
--      organization of one (nothing is lost, nobody sees more than before), and a row
--      inserted without one gets its owner's (a job's approval its job's, a connection's
--      metrics and logs their connection's);
--   3. row level security: a member reads the rows of their organizations (seed 004's
--      pattern; the owner rules stay); a row a user inserts must be in one of their
--      organizations; only an organization's admins change its members and its approval
--      routes;
--   4. approval routes: which roles decide an action type, how many of them must
--      approve (quorum), and after how long an undecided request is escalated.

-- 1. Organizations and members ----------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.organizations
    -- Added: the person this organization of one was made for (a solo user's own).
    ADD COLUMN IF NOT EXISTS personal_for uuid,
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.add_foreign_key('public.organizations', 'organizations_personal_for_fkey',
    '{personal_for}', 'public.profiles (id) ON DELETE CASCADE');
SELECT pg_temp.add_unique('public.organizations', 'organizations_personal_for_key',
    '{personal_for}');

CREATE TABLE IF NOT EXISTS public.team_members (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role text NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'manager', 'member')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.team_members
    ADD COLUMN IF NOT EXISTS role text NOT NULL DEFAULT 'member',
    -- Added: asked first when an approval is escalated (before the admins).
    ADD COLUMN IF NOT EXISTS backup_approver boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.add_foreign_key('public.team_members', 'team_members_org_id_fkey', '{org_id}',
    'public.organizations (id) ON DELETE CASCADE');
SELECT pg_temp.add_foreign_key('public.team_members', 'team_members_user_id_fkey',
    '{user_id}', 'auth.users (id) ON DELETE CASCADE');
SELECT pg_temp.add_unique('public.team_members', 'team_members_org_id_user_id_key',
    '{org_id,user_id}');
SELECT pg_temp.add_status_check('public.team_members', 'team_members_role_check', 'role',
    '{admin,manager,member}');
SELECT pg_temp.add_index('public.team_members', 'team_members_user_idx',
    'USING btree (user_id)');
SELECT pg_temp.add_updated_at_trigger('public.organizations', 'organizations_updated_at');
SELECT pg_temp.add_updated_at_trigger('public.team_members', 'team_members_updated_at');

-- Who is signed in, where: SECURITY DEFINER so policies on team_members itself can ask
-- without recursing into its own row level security.
CREATE FUNCTION public.member_org_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT org_id FROM public.team_members WHERE user_id = auth.uid()
$$;
CREATE FUNCTION public.org_role(org uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT role FROM public.team_members WHERE org_id = org AND user_id = auth.uid()
$$;
REVOKE ALL ON FUNCTION public.member_org_ids(), public.org_role(uuid) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.member_org_ids(), public.org_role(uuid) TO authenticated;

-- A person's organization of one (made once; the back end's and the trigger's).
CREATE FUNCTION public.personal_org(person uuid) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    org uuid;
BEGIN
    IF person IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT id INTO org FROM public.organizations WHERE personal_for = person;
    IF org IS NULL THEN
        INSERT INTO public.organizations (name, personal_for)
        SELECT coalesce(nullif(p.full_name, ''), p.email_address, 'Personal'), p.id
        FROM public.profiles p WHERE p.id = person
        ON CONFLICT (personal_for) DO NOTHING
        RETURNING id INTO org;
        IF org IS NULL THEN  -- no such profile, or made meanwhile
            SELECT id INTO org FROM public.organizations WHERE personal_for = person;
            IF org IS NULL THEN
                RETURN NULL;
            END IF;
        END IF;
        INSERT INTO public.team_members (org_id, user_id, role) VALUES (org, person, 'admin')
        ON CONFLICT (org_id, user_id) DO NOTHING;
    END IF;
    RETURN org;
END
$$;
REVOKE ALL ON FUNCTION public.personal_org(uuid) FROM PUBLIC, anon, authenticated;

CREATE FUNCTION public.profile_personal_org() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM public.personal_org(NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER profiles_personal_org AFTER INSERT ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.profile_personal_org();

-- A team of the signed-in user, who becomes its admin (seed 001's create_workspace).
CREATE FUNCTION public.create_organization(org_name text) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    org uuid;
BEGIN
    IF auth.uid() IS NULL THEN
        RAISE EXCEPTION 'sign in to create an organization' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF coalesce(btrim(org_name), '') = '' THEN
        RAISE EXCEPTION 'an organization needs a name' USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO public.organizations (name) VALUES (btrim(org_name)) RETURNING id INTO org;
    INSERT INTO public.team_members (org_id, user_id, role) VALUES (org, auth.uid(), 'admin');
    RETURN org;
END
$$;
REVOKE ALL ON FUNCTION public.create_organization(text) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.create_organization(text) TO authenticated;

SELECT public.personal_org(id) FROM public.profiles ORDER BY created_at, id;

-- 2. org_id on the work ------------------------------------------------------------------
ALTER TABLE public.jobs ADD COLUMN IF NOT EXISTS org_id uuid;
ALTER TABLE public.approvals ADD COLUMN IF NOT EXISTS org_id uuid;
ALTER TABLE public.generations ADD COLUMN IF NOT EXISTS org_id uuid;
ALTER TABLE public.platform_connections ADD COLUMN IF NOT EXISTS org_id uuid;
ALTER TABLE public.performance_metrics ADD COLUMN IF NOT EXISTS org_id uuid;
ALTER TABLE public.metric_sync_logs ADD COLUMN IF NOT EXISTS org_id uuid;

-- Each row's values stay as they were: the updated_at triggers (ours, or an app's own
-- update_updated_at()) are held while org_id is filled in.
CREATE FUNCTION pg_temp.fill_org_id(tbl regclass, assignment text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    held name[] := ARRAY(
        SELECT t.tgname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE t.tgrelid = tbl AND NOT t.tgisinternal AND t.tgenabled <> 'D'
          AND p.proname = 'update_updated_at');
    trig name;
BEGIN
    FOREACH trig IN ARRAY held LOOP
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', tbl, trig);
    END LOOP;
    EXECUTE format('UPDATE %s AS t SET %s', tbl, assignment);
    FOREACH trig IN ARRAY held LOOP
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER %I', tbl, trig);
    END LOOP;
END
$$;
SELECT pg_temp.fill_org_id('public.jobs',
    'org_id = public.personal_org(t.user_id) WHERE t.org_id IS NULL AND t.user_id IS NOT NULL');
SELECT pg_temp.fill_org_id('public.approvals',
    'org_id = j.org_id FROM public.jobs j WHERE j.id = t.job_id AND t.org_id IS NULL');
SELECT pg_temp.fill_org_id('public.generations',
    'org_id = public.personal_org(t.user_id) WHERE t.org_id IS NULL AND t.user_id IS NOT NULL');
SELECT pg_temp.fill_org_id('public.platform_connections',
    'org_id = public.personal_org(t.created_by) '
    'WHERE t.org_id IS NULL AND t.created_by IS NOT NULL');
SELECT pg_temp.fill_org_id(t::regclass,
    'org_id = c.org_id FROM public.platform_connections c '
    'WHERE c.id = t.platform_connection_id AND t.org_id IS NULL')
FROM unnest(ARRAY['public.performance_metrics', 'public.metric_sync_logs']) AS t;

SELECT pg_temp.add_foreign_key(t::regclass, replace(t, 'public.', '') || '_org_id_fkey',
    '{org_id}', 'public.organizations (id) ON DELETE CASCADE')
FROM unnest(ARRAY['public.jobs', 'public.approvals', 'public.generations',
    'public.platform_connections', 'public.performance_metrics',
    'public.metric_sync_logs']) AS t;
SELECT pg_temp.add_index(t::regclass, replace(t, 'public.', '') || '_org_idx',
    'USING btree (org_id)')
FROM unnest(ARRAY['public.jobs', 'public.approvals', 'public.generations',
    'public.platform_connections', 'public.metric_sync_logs']) AS t;
SELECT pg_temp.add_index('public.performance_metrics', 'performance_metrics_org_date_idx',
    'USING btree (org_id, date)');

-- A row without an org goes to its owner's organization of one (a user's own work stays
-- theirs alone unless they put it in a team). SECURITY DEFINER: it may make that
-- organization, and read the parent row row level security might hide.
CREATE FUNCTION public.default_org_id() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.org_id IS NOT NULL THEN
        RETURN NEW;
    END IF;
    CASE TG_TABLE_NAME
        WHEN 'jobs', 'generations' THEN
            NEW.org_id := public.personal_org(NEW.user_id);
        WHEN 'platform_connections' THEN
            NEW.org_id := public.personal_org(NEW.created_by);
        WHEN 'approvals' THEN
            SELECT org_id INTO NEW.org_id FROM public.jobs WHERE id = NEW.job_id;
        ELSE  -- performance_metrics, metric_sync_logs
            SELECT org_id INTO NEW.org_id FROM public.platform_connections
            WHERE id = NEW.platform_connection_id;
    END CASE;
    RETURN NEW;
END
$$;
SELECT pg_temp.add_trigger(t::regclass, replace(t, 'public.', '') || '_default_org',
    format('BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION public.default_org_id()', t))
FROM unnest(ARRAY['public.jobs', 'public.approvals', 'public.generations',
    'public.platform_connections', 'public.performance_metrics',
    'public.metric_sync_logs']) AS t;

-- 3. Row level security by membership ----------------------------------------------------
SELECT pg_temp.enable_rls(t) FROM unnest(ARRAY[
    'public.organizations', 'public.team_members'
]::regclass[]) AS t;
REVOKE ALL ON public.organizations, public.team_members FROM anon, authenticated;
GRANT SELECT ON public.organizations TO authenticated;
GRANT UPDATE (name) ON public.organizations TO authenticated;
GRANT SELECT, DELETE ON public.team_members TO authenticated;
GRANT INSERT (org_id, user_id, role, backup_approver) ON public.team_members TO authenticated;
GRANT UPDATE (role, backup_approver) ON public.team_members TO authenticated;

CREATE POLICY "Members read their organizations" ON public.organizations
    FOR SELECT TO authenticated USING (id IN (SELECT public.member_org_ids()));
CREATE POLICY "Admins rename their organizations" ON public.organizations
    FOR UPDATE TO authenticated
    USING (public.org_role(id) = 'admin') WITH CHECK (public.org_role(id) = 'admin');
CREATE POLICY "Members read their organizations' members" ON public.team_members
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Admins add members" ON public.team_members
    FOR INSERT TO authenticated WITH CHECK (public.org_role(org_id) = 'admin');
CREATE POLICY "Admins change members" ON public.team_members
    FOR UPDATE TO authenticated
    USING (public.org_role(org_id) = 'admin') WITH CHECK (public.org_role(org_id) = 'admin');
CREATE POLICY "Admins remove members" ON public.team_members
    FOR DELETE TO authenticated USING (public.org_role(org_id) = 'admin');

-- Reading: the owner rules of 0003-0005 stay; members read their organizations' rows.
CREATE POLICY "Members read their organizations' jobs" ON public.jobs
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Members read their organizations' approvals" ON public.approvals
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Members read their organizations' generations" ON public.generations
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Members read their organizations' connections" ON public.platform_connections
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Members read their organizations' metrics" ON public.performance_metrics
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Members read their organizations' sync logs" ON public.metric_sync_logs
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));

-- Writing: whatever the owner rules allow, only inside the user's organizations
-- (restrictive: added to every permissive policy; the default filled in first).
GRANT INSERT (org_id) ON public.jobs, public.generations, public.platform_connections
    TO authenticated;
CREATE POLICY "Jobs stay in the user's organizations" ON public.jobs AS RESTRICTIVE
    FOR INSERT TO authenticated WITH CHECK (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Generations stay in the user's organizations" ON public.generations
    AS RESTRICTIVE FOR INSERT TO authenticated
    WITH CHECK (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Connections stay in the user's organizations" ON public.platform_connections
    AS RESTRICTIVE FOR INSERT TO authenticated
    WITH CHECK (org_id IN (SELECT public.member_org_ids()));

-- 4. Approval routes ---------------------------------------------------------------------
-- Per organization and action type ('payment', 'delete', 'update', or '*' for any
-- other): the roles whose members are asked, how many distinct approvals it takes, and
-- after how long without a decision the request goes to the next approvers (backups,
-- then admins). No route: the job's owner decides alone, as before.
CREATE TABLE public.approval_routes (
    org_id uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    action_type text NOT NULL CHECK (action_type ~ '^(\*|[a-z_]{1,40})$'),
    approver_roles text[] NOT NULL
        CHECK (approver_roles <> '{}' AND approver_roles <@ ARRAY['admin', 'manager', 'member']),
    quorum integer NOT NULL DEFAULT 1 CHECK (quorum BETWEEN 1 AND 10),
    escalate_after_seconds integer CHECK (escalate_after_seconds >= 60),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, action_type)
);
CREATE TRIGGER approval_routes_updated_at BEFORE UPDATE ON public.approval_routes
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
ALTER TABLE public.approval_routes ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.approval_routes FROM anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.approval_routes TO authenticated;
CREATE POLICY "Members read their organizations' approval routes" ON public.approval_routes
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()));
CREATE POLICY "Admins set approval routes" ON public.approval_routes
    FOR ALL TO authenticated
    USING (public.org_role(org_id) = 'admin') WITH CHECK (public.org_role(org_id) = 'admin');
