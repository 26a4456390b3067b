-- Listings that stay fast for a reader with many rows (issue 31 §2, docs/performance.md
-- "Listing one user's rows"): `rpc/list_jobs`, `rpc/list_approvals`, `rpc/list_generations`.
--
-- Through the tables, a reader's newest rows are what two read policies allow, ORed: the
-- owner's (`user_id = auth.uid()`) and the members' (`org_id = ANY (member orgs)`). An OR
-- is read by bitmaps, which have no order, so a user or organization with 10,000 rows
-- among 1,000,000 has all 10,000 read and sorted for a page of 50 (p50 13-29 ms); with the
-- app's filter (`?org_id=eq.`) the planner still misjudges the OR (benchmarks/HISTORY.md,
-- "the heavy reader's listings"). These functions read the same rows as ordered walks
-- that stop at the page: each of the reader's organizations through
-- `(org_id, created_at DESC)` and the reader's own rows through `(user_id, created_at DESC)`,
-- at most a page from each, merged (a row both theirs and their organization's once).
-- Neither walk filters out rows it reads: excluding the reader's own rows from their
-- organization of one, where they all are, would read all of them to keep none. Bitmap
-- scans are off inside them: an organization expected to have few pending approvals
-- (statistics taken before it had 1,000) was read by bitmap, all 1,000, then sorted.
--
-- Who reads what is the read policies', restated: SECURITY DEFINER (the policies would
-- otherwise add the OR back), so the functions filter by the signed-in user themselves.
-- tests/security/test_listing_functions.py holds them to the policies: for every reader
-- and filter of a population, page after page, the same rows as the table read through
-- row level security; nothing for no one signed in; refused to anon and service_role.
--
-- Arguments (PostgREST's named arguments): org_id (one organization's rows the reader may
-- read), status, before / before_id (the last row of the previous page: rows strictly
-- older, by created_at then id), page_size (1-1000, default 50). Newest first, by
-- created_at then id: a page boundary inside rows written in one transaction (the same
-- created_at) loses and repeats nothing.

CREATE FUNCTION orchestrator.listing_query(tbl text, own boolean, by_org boolean,
    by_status boolean, cursor_kind text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
DECLARE
    -- $1 the reader, $2 the organizations to walk, $3 org_id, $4 status, $5 before,
    -- $6 before_id, $7 page_size.
    shared text := CASE WHEN by_status THEN ' AND t.status = $4' ELSE '' END
        || CASE cursor_kind
            WHEN 'at_and_id' THEN ' AND (t.created_at, t.id) < ($5, $6)'
            WHEN 'at' THEN ' AND t.created_at < $5'
            ELSE '' END;
    walks text := format($q$
        (SELECT o.* FROM unnest($2) AS m (org) CROSS JOIN LATERAL (
            SELECT t.* FROM public.%1$I t WHERE t.org_id = m.org %2$s
            ORDER BY t.created_at DESC, t.id DESC LIMIT $7) o)
    $q$, tbl, shared);
BEGIN
    IF tbl IS NULL OR tbl NOT IN ('jobs', 'approvals', 'generations') THEN
        RAISE EXCEPTION 'no listing of %', tbl;
    END IF;
    IF own THEN
        walks := walks || format($q$
            UNION ALL
            (SELECT t.* FROM public.%1$I t WHERE t.user_id = $1 %2$s %3$s
             ORDER BY t.created_at DESC, t.id DESC LIMIT $7)
        $q$, tbl, CASE WHEN by_org THEN ' AND t.org_id = $3' ELSE '' END, shared);
    END IF;
    -- A row both the reader's own and in one of their organizations comes twice.
    RETURN 'SELECT DISTINCT ON (u.created_at, u.id) u.* FROM (' || walks || ') u '
        'ORDER BY u.created_at DESC, u.id DESC LIMIT $7';
END
$$;

-- One listing of `kind`'s table (NULL::public.jobs, ...), as the reader may read it. A bad
-- argument is an error PostgREST answers with 400 (22023), not an empty page.
CREATE FUNCTION orchestrator.list_rows(kind anyelement, org_id uuid, status text,
    before timestamptz, before_id uuid, page_size integer) RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' SET enable_bitmapscan = off
AS $$
DECLARE
    tbl text := CASE pg_typeof(kind)
        WHEN 'public.jobs'::regtype THEN 'jobs'
        WHEN 'public.approvals'::regtype THEN 'approvals'
        WHEN 'public.generations'::regtype THEN 'generations' END;
    orgs uuid[];
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'no listing of %', pg_typeof(kind);
    END IF;
    IF page_size IS NULL OR page_size < 1 OR page_size > 1000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 1000, not %', page_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF before_id IS NOT NULL AND before IS NULL THEN
        RAISE EXCEPTION 'before_id needs before (the created_at of the same row)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF auth.uid() IS NULL THEN
        RETURN;  -- nobody signed in reads nothing
    END IF;
    orgs := ARRAY(
        SELECT m.org_id FROM public.team_members m
        WHERE m.user_id = auth.uid()
          AND (list_rows.org_id IS NULL OR m.org_id = list_rows.org_id)
    );
    RETURN QUERY EXECUTE orchestrator.listing_query(tbl,
        list_rows.org_id IS NULL OR cardinality(orgs) = 0, list_rows.org_id IS NOT NULL,
        status IS NOT NULL,
        CASE WHEN before_id IS NOT NULL THEN 'at_and_id' WHEN before IS NOT NULL THEN 'at' END)
        USING auth.uid(), orgs, list_rows.org_id, status, before, before_id, page_size;
END
$$;

REVOKE ALL ON FUNCTION orchestrator.listing_query(text, boolean, boolean, boolean, text),
    orchestrator.list_rows(anyelement, uuid, text, timestamptz, uuid, integer) FROM PUBLIC;

CREATE FUNCTION public.list_jobs(org_id uuid DEFAULT NULL, status text DEFAULT NULL,
    before timestamptz DEFAULT NULL, before_id uuid DEFAULT NULL,
    page_size integer DEFAULT 50) RETURNS SETOF public.jobs
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT * FROM orchestrator.list_rows(NULL::public.jobs, org_id, status, before, before_id,
        page_size)
$$;
CREATE FUNCTION public.list_approvals(org_id uuid DEFAULT NULL, status text DEFAULT NULL,
    before timestamptz DEFAULT NULL, before_id uuid DEFAULT NULL,
    page_size integer DEFAULT 50) RETURNS SETOF public.approvals
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT * FROM orchestrator.list_rows(NULL::public.approvals, org_id, status, before,
        before_id, page_size)
$$;
CREATE FUNCTION public.list_generations(org_id uuid DEFAULT NULL, status text DEFAULT NULL,
    before timestamptz DEFAULT NULL, before_id uuid DEFAULT NULL,
    page_size integer DEFAULT 50) RETURNS SETOF public.generations
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT * FROM orchestrator.list_rows(NULL::public.generations, org_id, status, before,
        before_id, page_size)
$$;

-- Signed-in users only (Supabase's default privileges grant every new function in public
-- to anon and service_role too; service_role reads the tables directly).
REVOKE ALL ON FUNCTION public.list_jobs(uuid, text, timestamptz, uuid, integer),
    public.list_approvals(uuid, text, timestamptz, uuid, integer),
    public.list_generations(uuid, text, timestamptz, uuid, integer)
    FROM PUBLIC, anon, service_role;
GRANT EXECUTE ON FUNCTION public.list_jobs(uuid, text, timestamptz, uuid, integer),
    public.list_approvals(uuid, text, timestamptz, uuid, integer),
    public.list_generations(uuid, text, timestamptz, uuid, integer)
    TO authenticated;
