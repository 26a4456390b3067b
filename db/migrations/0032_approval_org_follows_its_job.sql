-- An approval is in its job's organization, as it has its job's owner (0022), whatever the
-- writer sends (issue 27 with issue 31). 0027 filled an approval's org_id from its job
-- only on insert: an approval moved to another job kept its old organization, and so
-- stayed readable by the old organization's members ("Members read their organizations'
-- approvals"); a job moved into a team left its approvals behind. From here the database
-- derives both from the job on every insert and change, and a job's move takes its
-- approvals along.

CREATE OR REPLACE FUNCTION public.approvals_owner() RETURNS trigger
    LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    -- No such job: both NULL (nobody's).
    SELECT j.user_id, j.org_id INTO NEW.user_id, NEW.org_id
    FROM public.jobs j WHERE j.id = NEW.job_id;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.approvals_owner() FROM PUBLIC;

DROP TRIGGER IF EXISTS approvals_owner ON public.approvals;
CREATE TRIGGER approvals_owner BEFORE INSERT OR UPDATE OF job_id, user_id, org_id
    ON public.approvals FOR EACH ROW EXECUTE FUNCTION public.approvals_owner();

-- A job that changes organization takes its approvals along. SECURITY DEFINER: whoever
-- may move the job, the approvals (which users never write) follow.
CREATE OR REPLACE FUNCTION public.job_approvals_follow() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    UPDATE public.approvals SET org_id = NEW.org_id
    WHERE job_id = NEW.id AND org_id IS DISTINCT FROM NEW.org_id;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.job_approvals_follow() FROM PUBLIC;

DROP TRIGGER IF EXISTS jobs_approvals_follow ON public.jobs;
CREATE TRIGGER jobs_approvals_follow AFTER UPDATE OF org_id ON public.jobs
    FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id)
    EXECUTE FUNCTION public.job_approvals_follow();

-- The approvals already there; their updated_at stays what it was (as in 0022).
DO $$
DECLARE
    ours boolean := EXISTS (SELECT 1 FROM pg_trigger
        WHERE tgrelid = 'public.approvals'::regclass AND tgname = 'approvals_updated_at');
BEGIN
    IF ours THEN
        ALTER TABLE public.approvals DISABLE TRIGGER approvals_updated_at;
    END IF;
    UPDATE public.approvals a SET org_id = j.org_id
        FROM public.jobs j
        WHERE j.id = a.job_id AND a.org_id IS DISTINCT FROM j.org_id;
    IF ours THEN
        ALTER TABLE public.approvals ENABLE TRIGGER approvals_updated_at;
    END IF;
END
$$;
