-- name: insert_connection
-- Store a connection (credentials already encrypted); a retry finds the row it created.
INSERT INTO public.platform_connections
    (id, platform, credentials, account_id, account_name, sync_frequency, created_by,
     login_customer_id)
VALUES (%(id)s, %(platform)s, %(credentials)s, %(account_id)s, %(account_name)s,
        %(sync_frequency)s, %(created_by)s, %(login_customer_id)s)
ON CONFLICT (id) DO NOTHING

-- name: get_connection
-- One connection by id.
SELECT * FROM public.platform_connections WHERE id = %(id)s

-- name: list_connections
-- Every connection, oldest first (the schedules mirror this list).
SELECT * FROM public.platform_connections ORDER BY created_at, id

-- name: open_sync_log
-- Open the log of a sync run; a retry of the same run finds the row it created.
INSERT INTO public.metric_sync_logs
    (id, platform_connection_id, status, window_start, window_end, temporal_workflow_id,
     temporal_run_id)
VALUES (%(id)s, %(connection_id)s, 'running', %(window_start)s, %(window_end)s,
        %(workflow_id)s, %(run_id)s)
ON CONFLICT (id) DO NOTHING

-- name: get_sync_log
-- One sync log by id.
SELECT * FROM public.metric_sync_logs WHERE id = %(id)s

-- name: list_sync_logs
-- Most recent sync logs, optionally of one connection.
SELECT * FROM public.metric_sync_logs
WHERE (%(connection_id)s::uuid IS NULL OR platform_connection_id = %(connection_id)s)
ORDER BY start_time DESC
LIMIT %(limit)s

-- name: upsert_metric_batch
-- One chunk of a page of metrics, on the natural key, counted. The arrays are bound in
-- binary format (db/binary_arrays.py); values come as text and are parsed here, exactly.
-- Each distinct source_detail comes once, picked by its 1-based position. A new row takes
-- the id sent with it. A value that did not
-- change is left alone (its sync_id still names the sync that last changed it) and not
-- counted; (xmax = 0) tells a row this statement inserted from one it updated. A new row
-- is in its connection's organization, read once per statement here rather than by the
-- default_org_id() trigger once per row (0027 sets the same; 0034 calls the trigger only
-- for a row that arrives without one).
WITH written AS (
    INSERT INTO public.performance_metrics AS m
        (id, platform_connection_id, platform, entity_id, metric_type, date, value, source,
         source_detail, sync_id, org_id)
    SELECT id, %(connection_id)s, %(platform)s, entity_id, metric_type, date, value::numeric,
           'api_sync', (%(source_details)b::jsonb[])[detail_n], %(sync_id)s,
           (SELECT c.org_id FROM public.platform_connections c WHERE c.id = %(connection_id)s)
    FROM unnest(%(ids)b::uuid[], %(entity_ids)b::text[], %(metric_types)b::text[],
                %(dates)b::date[], %(values)b::text[], %(detail_ns)b::int[])
         AS page (id, entity_id, metric_type, date, value, detail_n)
    ON CONFLICT (platform_connection_id, entity_id, metric_type, date)
        WHERE platform_connection_id IS NOT NULL DO UPDATE
    SET value = EXCLUDED.value, source = EXCLUDED.source, source_detail = EXCLUDED.source_detail,
        sync_id = EXCLUDED.sync_id, platform = EXCLUDED.platform
    WHERE m.value IS DISTINCT FROM EXCLUDED.value
       OR m.source_detail IS DISTINCT FROM EXCLUDED.source_detail
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS created,
       count(*) FILTER (WHERE NOT inserted) AS updated
FROM written

-- name: advance_last_synced
-- Move last_synced_at forward to the end of a window that starts at or before it (or when
-- the connection never synced): a backfill of an older range leaves no gap behind it.
UPDATE public.platform_connections
SET last_synced_at = %(synced_to)s
WHERE id = %(id)s
  AND (last_synced_at IS NULL
       OR (%(window_start)s <= last_synced_at AND last_synced_at < %(synced_to)s))
RETURNING last_synced_at
