-- An organization always keeps an admin (issue 27). Only admins change members and
-- approval routes (0027), so removing or demoting the last one would leave an
-- organization nobody can manage, its escalations with no admin tier. Refused, with the
-- reason, unless the organization itself is being deleted or the person's account is
-- (neither may be blocked: both cascade here). SECURITY DEFINER: it reads the other
-- members and the account whatever the caller may see.

CREATE OR REPLACE FUNCTION public.team_members_keep_an_admin() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF OLD.role = 'admin'
       AND (TG_OP = 'DELETE' OR NEW.role <> 'admin' OR NEW.org_id <> OLD.org_id)
       AND EXISTS (SELECT 1 FROM public.organizations o WHERE o.id = OLD.org_id)
       AND EXISTS (SELECT 1 FROM auth.users u WHERE u.id = OLD.user_id)
       AND NOT EXISTS (
           SELECT 1 FROM public.team_members m
           WHERE m.org_id = OLD.org_id AND m.role = 'admin' AND m.id <> OLD.id)
    THEN
        RAISE EXCEPTION 'an organization keeps at least one admin'
            USING ERRCODE = 'check_violation',
                  HINT = 'make another member an admin first';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
REVOKE ALL ON FUNCTION public.team_members_keep_an_admin() FROM PUBLIC;

DROP TRIGGER IF EXISTS team_members_keep_an_admin ON public.team_members;
CREATE TRIGGER team_members_keep_an_admin BEFORE UPDATE OF role, org_id OR DELETE
    ON public.team_members FOR EACH ROW EXECUTE FUNCTION public.team_members_keep_an_admin();
