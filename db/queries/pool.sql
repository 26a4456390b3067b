-- name: ping
-- The database answers (the ingress's health check).
SELECT 1
