-- name: event_owner
-- The user an event is about: given, or the owner of its approval's job, its sync's
-- connection or its connection; and its organization.
SELECT coalesce(
    %(user_id)s::uuid,
    CASE %(entity_type)s
        WHEN 'approval' THEN (
            SELECT j.user_id FROM public.approvals a JOIN public.jobs j ON j.id = a.job_id
            WHERE a.id = %(entity_id)s)
        WHEN 'metric_sync' THEN (
            SELECT c.created_by FROM public.metric_sync_logs l
            JOIN public.platform_connections c ON c.id = l.platform_connection_id
            WHERE l.id = %(entity_id)s)
        WHEN 'connection' THEN (
            SELECT created_by FROM public.platform_connections WHERE id = %(entity_id)s)
    END) AS user_id,
    -- Its organization (0027): given, or the entity's; that organization's channels hear it.
    coalesce(
        %(org_id)s::uuid,
        CASE %(entity_type)s
            WHEN 'job' THEN (SELECT org_id FROM public.jobs WHERE id = %(entity_id)s)
            WHEN 'approval' THEN (SELECT org_id FROM public.approvals WHERE id = %(entity_id)s)
            WHEN 'generation' THEN (
                SELECT org_id FROM public.generations WHERE id = %(entity_id)s)
            WHEN 'metric_sync' THEN (
                SELECT org_id FROM public.metric_sync_logs WHERE id = %(entity_id)s)
            WHEN 'connection' THEN (
                SELECT org_id FROM public.platform_connections WHERE id = %(entity_id)s)
        END) AS org_id

-- name: enqueue_deliveries
-- One row per active channel of the user (or the organization) that takes this event; a
-- repeated event finds its rows and adds none (the delivery key).
INSERT INTO public.notification_queue
    (id, event_key, event_type, channel_id, user_id, org_id, entity_id, entity_type,
     event_data, max_attempts, temporal_workflow_id)
SELECT q.id, %(event_key)s, %(event_type)s, q.channel_id, %(user_id)s, %(org_id)s,
       %(entity_id)s, %(entity_type)s, %(event_data)s, %(max_attempts)s,
       'notification-' || q.id
FROM (
    SELECT gen_random_uuid() AS id, c.id AS channel_id
    FROM public.notification_channels c
    WHERE c.is_active
      AND (c.user_id = %(user_id)s OR c.org_id = %(org_id)s)
      AND (c.events IS NULL OR %(event_type)s = ANY (c.events))
) q
ON CONFLICT (event_key, channel_id) DO NOTHING

-- name: event_deliveries
-- The deliveries of one event, new and earlier.
SELECT id, channel_id, is_processed, temporal_workflow_id
FROM public.notification_queue WHERE event_key = %(event_key)s ORDER BY id

-- name: reserve_send_slot
-- The channel's next free send slot, taken: slots are 60 / per_minute seconds apart, so
-- a channel never gets more than per_minute messages a minute. Returns how long to wait.
WITH taken AS (
    UPDATE public.notification_channels c
    SET next_send_at = greatest(c.next_send_at, now()) + make_interval(secs => 60.0 / c.per_minute)
    FROM public.notification_queue q
    WHERE q.id = %(id)s AND c.id = q.channel_id AND NOT q.is_processed
    RETURNING c.next_send_at - make_interval(secs => 60.0 / c.per_minute) AS slot_at, c.kind
)
UPDATE public.notification_queue q
SET next_attempt_at = taken.slot_at
FROM taken
WHERE q.id = %(id)s
RETURNING greatest(extract(epoch FROM taken.slot_at - now()), 0)::float8 AS wait_seconds,
          q.max_attempts, taken.kind

-- name: delivery_state
-- Where a delivery stands (for a run that finds it done, or its channel gone).
SELECT q.id, q.is_processed, q.outcome, q.max_attempts, q.channel_id
FROM public.notification_queue q WHERE q.id = %(id)s

-- name: delivery_context
-- What one delivery sends and where: the event, the channel (its secret still
-- encrypted), and the owner's address for an email channel without one.
SELECT q.id, q.event_type, q.event_data, q.is_processed, q.send_claimed_at, q.sent_at,
       c.id AS channel_id, c.kind, c.email_to, c.slack_channel, c.secret, c.is_active,
       p.email_address AS owner_email
FROM public.notification_queue q
JOIN public.notification_channels c ON c.id = q.channel_id
LEFT JOIN public.profiles p ON p.id = q.user_id
WHERE q.id = %(id)s

-- name: record_attempt
-- An attempt starts: the count follows Temporal's attempt number (a retried write
-- counts once).
UPDATE public.notification_queue
SET attempts = greatest(attempts, %(attempt)s), next_attempt_at = NULL
WHERE id = %(id)s AND NOT is_processed

-- name: claim_send
-- Claim the one post a delivery ever makes, committed before the call: only the first
-- caller gets a row back. The returned send_claimed_at identifies this claim.
UPDATE public.notification_queue SET send_claimed_at = clock_timestamp()
WHERE id = %(id)s AND NOT is_processed AND send_claimed_at IS NULL AND sent_at IS NULL
RETURNING send_claimed_at

-- name: release_claim
-- Give the claim back: the vendor answered that it posted nothing.
UPDATE public.notification_queue SET send_claimed_at = NULL
WHERE id = %(id)s AND send_claimed_at = %(claimed_at)s AND sent_at IS NULL

-- name: record_sent
-- Sent: the row is final.
UPDATE public.notification_queue
SET outcome = 'sent', external_id = %(external_id)s, sent_at = now(), is_processed = true,
    processed_at = now(), next_attempt_at = NULL
WHERE id = %(id)s AND NOT is_processed

-- name: record_attempt_failed
-- An attempt failed; the next one is due in retry_seconds (NULL: none is due).
UPDATE public.notification_queue
SET last_error = %(error)s,
    next_attempt_at = now() + make_interval(secs => %(retry_seconds)s::float8)
WHERE id = %(id)s AND NOT is_processed

-- name: close_delivery
-- The delivery ended without a send: failed (refused, or out of attempts) or unknown (a
-- post that may have reached Slack is never repeated). The row is final.
UPDATE public.notification_queue
SET outcome = %(outcome)s, last_error = coalesce(%(error)s, last_error),
    is_processed = true, processed_at = now(), next_attempt_at = NULL
WHERE id = %(id)s AND NOT is_processed

-- name: insert_channel
-- A notification channel (its secret already encrypted, or NULL for email); the same id
-- again replaces it (the dev stack's demo channel points at a new emulator each start).
INSERT INTO public.notification_channels
    (id, user_id, org_id, kind, events, email_to, slack_channel, secret, per_minute)
VALUES (%(id)s, %(user_id)s, %(org_id)s, %(kind)s, %(events)s, %(email_to)s,
        %(slack_channel)s, %(secret)s, %(per_minute)s)
ON CONFLICT (id) DO UPDATE SET
    kind = EXCLUDED.kind, events = EXCLUDED.events, email_to = EXCLUDED.email_to,
    slack_channel = EXCLUDED.slack_channel, secret = EXCLUDED.secret,
    per_minute = EXCLUDED.per_minute, is_active = true

-- name: list_deliveries
-- Deliveries of a user's events, newest first (the dashboard's and the CLI's view).
SELECT q.id, q.event_type, q.event_key, c.kind, q.attempts, q.max_attempts,
       q.next_attempt_at, q.last_error, q.is_processed, q.processed_at, q.outcome,
       q.created_at
FROM public.notification_queue q
LEFT JOIN public.notification_channels c ON c.id = q.channel_id
WHERE (%(user_id)s::uuid IS NULL OR q.user_id = %(user_id)s)
ORDER BY q.created_at DESC, q.id
LIMIT %(limit)s

-- name: abandon_delivery
-- The sweep: the delivery's workflow ended without closing its row. A claimed Slack post
-- may have been made: unknown; anything else: failed.
UPDATE public.notification_queue
SET outcome = CASE WHEN send_claimed_at IS NOT NULL THEN 'unknown' ELSE 'failed' END,
    last_error = %(reason)s, is_processed = true, processed_at = now(), next_attempt_at = NULL
WHERE id = %(id)s AND NOT is_processed
