-- Dashboard refreshes (0025): which materialized views to refresh and how the last went.

-- name: list_dashboard_refreshes
-- Every configured view, with whether a materialized view of that name exists now.
SELECT d.view_name, d.every_minutes, d.is_active, d.last_refreshed_at, d.last_duration_ms,
       d.last_concurrently, d.last_error, (c.oid IS NOT NULL) AS present
FROM public.dashboard_refreshes d
LEFT JOIN pg_catalog.pg_class c
    ON c.oid = to_regclass(CASE WHEN strpos(d.view_name, '.') > 0 THEN d.view_name
                                ELSE 'public.' || d.view_name END)
   AND c.relkind = 'm'
ORDER BY d.view_name

-- name: materialized_view
-- A materialized view by its configured name: its schema and name as the catalog spells
-- them, whether it holds data, and whether it has the unique index REFRESH ... CONCURRENTLY
-- needs (on plain columns, without a WHERE clause).
SELECT n.nspname AS schema_name, c.relname AS view_name, c.relispopulated AS populated,
       EXISTS (
           SELECT 1 FROM pg_catalog.pg_index i
           WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
             AND i.indpred IS NULL AND i.indexprs IS NULL
       ) AS has_unique_index
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(CASE WHEN strpos(%(view_name)s, '.') > 0 THEN %(view_name)s
                               ELSE 'public.' || %(view_name)s END)
  AND c.relkind = 'm'

-- name: try_refresh_lock
-- One refresh of a view at a time, whoever starts it (schedule, trigger, backfill): held
-- until the transaction ends.
SELECT pg_try_advisory_xact_lock(hashtextextended('dashboard-refresh:' || %(view_name)s, 0))
    AS locked

-- name: record_dashboard_refresh
-- How the refresh went (a configured view only; a view refreshed by hand has no row).
UPDATE public.dashboard_refreshes
SET last_refreshed_at = CASE WHEN %(error)s::text IS NULL THEN now() ELSE last_refreshed_at END,
    last_duration_ms = %(duration_ms)s, last_concurrently = %(concurrently)s,
    last_error = %(error)s
WHERE view_name = %(view_name)s
