-- name: approval_timing
-- When a gate opened and when it was decided (the decision-latency histogram).
SELECT created_at, decided_at FROM public.approvals WHERE id = %(id)s

-- name: approval_gauges
-- The open gates: how many, how many expire within the warning window, the oldest's age.
SELECT count(*) AS pending,
       count(*) FILTER (WHERE expires_at < now() + %(warning)s) AS expiring_soon,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_seconds
FROM public.approvals
WHERE status = 'pending'

-- name: sync_gauges
-- Per platform, over active connections: the longest time since a successful sync (since
-- the connection was added when it never synced), and how many whose last sync failed.
SELECT c.platform,
       max(extract(epoch FROM now() - coalesce(c.last_synced_at, c.created_at)))::float8
           AS lag_seconds,
       count(*) FILTER (WHERE last_log.status = 'failed') AS failing
FROM public.platform_connections c
LEFT JOIN LATERAL (
    SELECT l.status FROM public.metric_sync_logs l
    WHERE l.platform_connection_id = c.id AND l.status <> 'running'
    ORDER BY l.start_time DESC LIMIT 1
) last_log ON true
WHERE c.is_active
GROUP BY c.platform
