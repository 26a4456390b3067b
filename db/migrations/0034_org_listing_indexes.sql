-- One organization's listing stays fast however large the tables grow (issue 31 §2;
-- `python -m benchmarks.scale --scenario listing`, docs/performance.md "Cost as work grows").
--
-- A member lists an organization's rows as PostgREST asks for them
-- (`jobs?org_id=eq.<org>&order=created_at.desc&limit=50`), row level security adding
-- "Members read their organizations' ..." (0027). With only the `(org_id)` indexes of
-- 0027 the plan fetched every row of the organization and sorted them to keep the newest
-- 50 (100,000 rows, an organization of 1,000: Bitmap Index Scan on jobs_org_idx, top-N
-- sort of all 1,000, p50 3.5 ms). It now uses `(org_id, created_at DESC)`; with the
-- members' policy below the planner still fetches the organization's rows by bitmap and
-- sorts them (an organization of 10,000 among 1,000,000: p50 27-29 ms, docs/performance.md).
-- The `(org_id)` indexes are dropped: the new ones serve every lookup by
-- org_id they served (the cascade of an organization's deletion among them), and each
-- insert then updates one index fewer.
CREATE INDEX IF NOT EXISTS jobs_org_created_idx ON public.jobs (org_id, created_at DESC);
CREATE INDEX IF NOT EXISTS approvals_org_created_idx
    ON public.approvals (org_id, created_at DESC);
-- An organization's pending approvals, newest first, without reading its decided ones (the
-- organization with 10,000 decided and none pending: p50 0.2 ms at 1,000,000 rows).
CREATE INDEX IF NOT EXISTS approvals_org_pending_idx
    ON public.approvals (org_id, created_at DESC) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS generations_org_created_idx
    ON public.generations (org_id, created_at DESC);

DROP INDEX IF EXISTS public.jobs_org_idx;
DROP INDEX IF EXISTS public.approvals_org_idx;
DROP INDEX IF EXISTS public.generations_org_idx;

-- The metric write path (issue 31 §2, 1,000,000 rows against COPY): the upsert names each
-- new row's organization itself, read once per statement from its connection
-- (db/queries/metrics.sql), so default_org_id() has nothing to do for it; called for
-- every row all the same, the trigger cost ~4-7 us of Postgres CPU a row (a third of the
-- upsert's own work without triggers). It is now called only for a row that arrives
-- without an organization, which is all it ever changed (it returns a row that has one
-- as it came).
DROP TRIGGER IF EXISTS performance_metrics_default_org ON public.performance_metrics;
CREATE TRIGGER performance_metrics_default_org BEFORE INSERT ON public.performance_metrics
    FOR EACH ROW WHEN (NEW.org_id IS NULL) EXECUTE FUNCTION public.default_org_id();

-- A user's own listing (`jobs?order=created_at.desc&limit=50`, no filter: the policies
-- filter). Since 0027 two permissive policies apply, ORed: the owner's and the members'.
-- Written `org_id IN (SELECT public.member_org_ids())`, the members' is a hashed subplan no
-- index can answer, so the OR made every listing a sequential scan of the whole table
-- (100,000 rows: p50 145 ms for a user with 100 jobs, 178 ms with 1,000). As
-- `= ANY (ARRAY(...))` the organizations are read once, and each side of the OR is an
-- index lookup (BitmapOr of the owner's index and the one above): p50 0.5-0.7 ms at
-- 1,000,000 rows for a user with ~100 rows each, 13-19 ms with 10,000. Who
-- reads what is unchanged (an org_id that is NULL matches neither form).
DROP POLICY IF EXISTS "Members read their organizations' jobs" ON public.jobs;
CREATE POLICY "Members read their organizations' jobs" ON public.jobs
    FOR SELECT TO authenticated
    USING (org_id = ANY (ARRAY(SELECT public.member_org_ids())));
DROP POLICY IF EXISTS "Members read their organizations' approvals" ON public.approvals;
CREATE POLICY "Members read their organizations' approvals" ON public.approvals
    FOR SELECT TO authenticated
    USING (org_id = ANY (ARRAY(SELECT public.member_org_ids())));
DROP POLICY IF EXISTS "Members read their organizations' generations" ON public.generations;
CREATE POLICY "Members read their organizations' generations" ON public.generations
    FOR SELECT TO authenticated
    USING (org_id = ANY (ARRAY(SELECT public.member_org_ids())));
