-- The natural key (connection, entity, metric, date) makes re-syncs idempotent; it is a
-- key of synced rows only. Rows without a connection are an app's own (seed 002's manual
-- entries, its other syncs): two of them may well share a metric and a date, and the key
-- over every row (NULLS NOT DISTINCT, 0005) refused the second one, or could not be built
-- on an adopted table. The upsert names the same predicate (db/queries/metrics.sql).
CREATE UNIQUE INDEX IF NOT EXISTS performance_metrics_connection_key
    ON public.performance_metrics (platform_connection_id, entity_id, metric_type, date)
    WHERE platform_connection_id IS NOT NULL;
DROP INDEX IF EXISTS public.performance_metrics_natural_key;
