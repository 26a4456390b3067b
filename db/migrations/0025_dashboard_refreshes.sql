-- Dashboard refresh without pg_cron (issue 28). Seed 002 refreshes its dashboard
-- materialized views every 15 minutes with pg_cron (`SELECT cron.schedule(
-- 'refresh-dashboards', '*/15 * * * *', 'SELECT refresh_dashboard_views();')`). Here each
-- view to refresh is a row; `orchestrator schedules reconcile` keeps one Temporal Schedule
-- per active row whose materialized view exists, which refreshes it (CONCURRENTLY when it
-- has a unique index, so dashboards keep reading), records how long it took, and skips a
-- run while the previous one is still going. Seed 002's three views are listed; a name
-- with no such view is skipped until the view exists.

CREATE TABLE public.dashboard_refreshes (
    -- "name" (schema public) or "schema.name", lower case as Postgres folds it.
    view_name text PRIMARY KEY
        CHECK (view_name ~ '^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$'),
    every_minutes integer NOT NULL DEFAULT 15 CHECK (every_minutes BETWEEN 1 AND 1440),
    is_active boolean NOT NULL DEFAULT true,
    -- The worker's: the last refresh.
    last_refreshed_at timestamptz,
    last_duration_ms integer,
    last_concurrently boolean,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER dashboard_refreshes_updated_at BEFORE UPDATE ON public.dashboard_refreshes
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();
ALTER TABLE public.dashboard_refreshes ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.dashboard_refreshes FROM anon, authenticated;

INSERT INTO public.dashboard_refreshes (view_name)
VALUES ('request_stats_by_type'), ('performance_daily_rollup'), ('user_activity_summary');
