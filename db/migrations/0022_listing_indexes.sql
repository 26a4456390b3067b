-- Listing one user's rows stays fast however large the tables grow (issue 31;
-- `python -m benchmarks.scale --scenario listing`, docs/performance.md "Cost as work grows").

-- A user's jobs, newest first: read from the index in order instead of fetching every
-- job of the user and sorting them (a user with 10,000 jobs: p99 ~50 ms before).
CREATE INDEX IF NOT EXISTS jobs_user_created_idx ON public.jobs (user_id, created_at DESC)
    INCLUDE (id);

-- A user sees the approvals of their own jobs. Written as `job_id IN (SELECT ...)` the
-- policy was a filter the planner applied to every approval in the table (~150 ms at
-- 1,000,000 approvals for any user); reading the user's job ids first still fetched and
-- sorted every approval of a user with many jobs (~130 ms with 10,000). So an approval
-- carries its job's owner, set by the database from the job on every insert and on any
-- change of job_id or user_id (whatever the writer sends), and the policy reads the
-- newest 50 of a user from (user_id, created_at). Who sees what is unchanged
-- (tests/security/test_rls.py, tests/security/test_approval_owner.py).
ALTER TABLE public.approvals ADD COLUMN IF NOT EXISTS user_id uuid;

CREATE OR REPLACE FUNCTION public.approvals_owner() RETURNS trigger
    LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    NEW.user_id := (SELECT j.user_id FROM public.jobs j WHERE j.id = NEW.job_id);
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.approvals_owner() FROM PUBLIC;

DROP TRIGGER IF EXISTS approvals_owner ON public.approvals;
CREATE TRIGGER approvals_owner BEFORE INSERT OR UPDATE OF job_id, user_id ON public.approvals
    FOR EACH ROW EXECUTE FUNCTION public.approvals_owner();

-- The approvals already there; their updated_at stays what it was (an adopted table may
-- keep its own updated_at trigger instead of ours: docs/supabase.md).
DO $$
DECLARE
    ours boolean := EXISTS (SELECT 1 FROM pg_trigger
        WHERE tgrelid = 'public.approvals'::regclass AND tgname = 'approvals_updated_at');
BEGIN
    IF ours THEN
        ALTER TABLE public.approvals DISABLE TRIGGER approvals_updated_at;
    END IF;
    UPDATE public.approvals a SET user_id = j.user_id
        FROM public.jobs j
        WHERE j.id = a.job_id AND a.user_id IS DISTINCT FROM j.user_id;
    IF ours THEN
        ALTER TABLE public.approvals ENABLE TRIGGER approvals_updated_at;
    END IF;
END
$$;

CREATE INDEX IF NOT EXISTS approvals_user_created_idx
    ON public.approvals (user_id, created_at DESC);
-- A user's pending approvals, newest first: found without reading their decided ones (a
-- user with 10,000 decided approvals and none pending: ~30 ms cached, 500 ms cold).
CREATE INDEX IF NOT EXISTS approvals_user_pending_idx
    ON public.approvals (user_id, created_at DESC) WHERE status = 'pending';

DROP POLICY IF EXISTS "Users read approvals of their own jobs" ON public.approvals;
CREATE POLICY "Users read approvals of their own jobs" ON public.approvals
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));
