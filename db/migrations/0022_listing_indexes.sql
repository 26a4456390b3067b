-- Listing one user's rows stays fast however large the tables grow (issue 31;
-- `python -m benchmarks.scale --scenario listing`, docs/performance.md "Listing").

-- A user's jobs, newest first: read from the index in order instead of fetching every
-- job of the user and sorting them (a user with 10,000 jobs: p99 ~50 ms before); with
-- the ids, the approvals policy below reads a user's job ids from the index alone.
CREATE INDEX IF NOT EXISTS jobs_user_created_idx ON public.jobs (user_id, created_at DESC)
    INCLUDE (id);

-- A user sees the approvals of their own jobs. Written as `job_id IN (SELECT ...)` the
-- policy is a filter the planner applies to every approval in the table (estimated at
-- half of them, so no index is used even when the query joins the user's jobs): ~150 ms
-- at 1,000,000 approvals for any user. As `job_id = ANY (ARRAY(SELECT ...))` the user's
-- job ids are read once and looked up in approvals_job_idx. Who sees what is unchanged
-- (tests/security/test_rls.py).
DROP POLICY IF EXISTS "Users read approvals of their own jobs" ON public.approvals;
CREATE POLICY "Users read approvals of their own jobs" ON public.approvals
    FOR SELECT TO authenticated
    USING (job_id = ANY (ARRAY(SELECT id FROM public.jobs WHERE user_id = (SELECT auth.uid()))));
