-- Retention (0024): archive and delete old rows in small batches, each batch one short
-- transaction that locks only the rows it moves (FOR UPDATE SKIP LOCKED: a row a writer
-- holds is left for the next run, and no writer waits on more than one batch). Batches
-- walk a table in time order from a cursor (the last row's time and key), so a run that
-- resumes after a crash goes on where its last heartbeat says, and rows kept because
-- their job, gate or generation is still open are not read again.
--
-- Parameters: cutoff (rows older than this go), after_ts / after_key (the cursor; NULL at
-- the start), limit (rows per batch). Each batch answers seen (rows it took: fewer than
-- limit means the step is done), n (rows moved) and the cursor of its last row.

-- name: tag_retention
-- This transaction deletes from the transition log on the back end's behalf (0024).
SELECT set_config('orchestrator.retention', 'archive', true)

-- name: policies
-- The retention policy of each kind (the most recently changed row where there are several).
SELECT DISTINCT ON (entity_type) id, entity_type, active_retention_days, archive_retention_days,
       last_archived_at, last_purged_at
FROM public.retention_policies
WHERE active_retention_days IS NOT NULL
ORDER BY entity_type, updated_at DESC NULLS LAST, id

-- name: table_present
-- Whether a table of the app (seed 002) exists here.
SELECT to_regclass(%(name)s) IS NOT NULL AS present

-- name: stamp_archived
-- The archive phase of a kind finished.
UPDATE public.retention_policies SET last_archived_at = now() WHERE id = %(id)s

-- name: stamp_purged
-- The delete phase of a kind finished.
UPDATE public.retention_policies SET last_purged_at = now() WHERE id = %(id)s

-- name: archive_activity_log
-- Seed 002's feed: rows past their active days move to archived_activity_log.
WITH batch AS (
    SELECT id, created_at FROM public.activity_log
    WHERE created_at < %(cutoff)s
      AND (created_at, id) > (coalesce(%(after_ts)s::timestamptz, '-infinity'),
                              coalesce(%(after_key)s::uuid, '00000000-0000-0000-0000-000000000000'))
    ORDER BY created_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), moved AS (
    DELETE FROM public.activity_log a USING batch b WHERE a.id = b.id
    RETURNING a.id, a.user_id, a.entity_type, a.entity_id, a.action, a.details, a.created_at
), archived AS (
    INSERT INTO public.archived_activity_log
        (id, user_id, entity_type, entity_id, action, details, created_at, archived_at)
    SELECT id, user_id, entity_type, entity_id, action, details, created_at, now() FROM moved
    ON CONFLICT (id) DO NOTHING
)
SELECT (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM moved) AS n, last.created_at AS last_ts, last.id::text AS last_key
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT created_at, id FROM batch ORDER BY created_at DESC, id DESC LIMIT 1)
    AS last ON true

-- name: purge_archived_activity_log
-- Archived feed rows past their archive days are deleted.
WITH batch AS (
    SELECT id, archived_at FROM public.archived_activity_log
    WHERE archived_at < %(cutoff)s
      AND (archived_at, id) > (coalesce(%(after_ts)s::timestamptz, '-infinity'),
                               coalesce(%(after_key)s::uuid, '00000000-0000-0000-0000-000000000000'))
    ORDER BY archived_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM public.archived_activity_log a USING batch b WHERE a.id = b.id RETURNING a.id
)
SELECT (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM gone) AS n, last.archived_at AS last_ts, last.id::text AS last_key
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT archived_at, id FROM batch ORDER BY archived_at DESC, id DESC LIMIT 1)
    AS last ON true

-- name: archive_notification_queue
-- Seed 002's queue: rows done with (processed, or out of attempts) past their active days
-- move to archived_notification_queue; rows still to be sent stay.
WITH batch AS (
    SELECT id, created_at FROM public.notification_queue
    WHERE created_at < %(cutoff)s
      AND (is_processed OR attempts >= max_attempts)
      AND (created_at, id) > (coalesce(%(after_ts)s::timestamptz, '-infinity'),
                              coalesce(%(after_key)s::uuid, '00000000-0000-0000-0000-000000000000'))
    ORDER BY created_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), moved AS (
    DELETE FROM public.notification_queue q USING batch b WHERE q.id = b.id
    RETURNING q.id, q.config_id, q.entity_id, q.entity_type, q.event_data, q.is_processed,
              q.attempts, q.max_attempts, q.next_attempt_at, q.last_error, q.created_at,
              q.processed_at
), archived AS (
    INSERT INTO public.archived_notification_queue
        (id, config_id, entity_id, entity_type, event_data, is_processed, attempts,
         max_attempts, next_attempt_at, last_error, created_at, processed_at, archived_at)
    SELECT id, config_id, entity_id, entity_type, event_data, is_processed, attempts,
           max_attempts, next_attempt_at, last_error, created_at, processed_at, now()
    FROM moved
    ON CONFLICT (id) DO NOTHING
)
SELECT (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM moved) AS n, last.created_at AS last_ts, last.id::text AS last_key
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT created_at, id FROM batch ORDER BY created_at DESC, id DESC LIMIT 1)
    AS last ON true

-- name: purge_archived_notification_queue
-- Archived notifications past their archive days are deleted.
WITH batch AS (
    SELECT id, archived_at FROM public.archived_notification_queue
    WHERE archived_at < %(cutoff)s
      AND (archived_at, id) > (coalesce(%(after_ts)s::timestamptz, '-infinity'),
                               coalesce(%(after_key)s::uuid, '00000000-0000-0000-0000-000000000000'))
    ORDER BY archived_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM public.archived_notification_queue a USING batch b WHERE a.id = b.id
    RETURNING a.id
)
SELECT (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM gone) AS n, last.archived_at AS last_ts, last.id::text AS last_key
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT archived_at, id FROM batch ORDER BY archived_at DESC, id DESC LIMIT 1)
    AS last ON true

-- name: archive_status_transitions
-- The transition log: rows past their active days move to archived_status_transitions,
-- except those of a job, gate or generation still open (its workflow may still read them).
-- Needs tag_retention first in the same transaction (the log refuses deletes otherwise).
WITH batch AS (
    SELECT t.id, t.at FROM public.status_transitions t
    WHERE t.at < %(cutoff)s
      AND (t.at, t.id) > (coalesce(%(after_ts)s::timestamptz, '-infinity'),
                          coalesce(%(after_key)s::bigint, 0))
      AND NOT EXISTS (
          SELECT 1 FROM public.jobs j
          WHERE t.entity = 'jobs' AND j.id = t.entity_id
            AND j.status IN ('pending', 'running', 'waiting_approval'))
      AND NOT EXISTS (
          SELECT 1 FROM public.approvals a LEFT JOIN public.jobs j ON j.id = a.job_id
          WHERE t.entity = 'approvals' AND a.id = t.entity_id
            AND (a.status = 'pending' OR j.status IN ('pending', 'running', 'waiting_approval')))
      AND NOT EXISTS (
          SELECT 1 FROM public.generations g
          WHERE t.entity = 'generations' AND g.id = t.entity_id
            AND g.status IN ('pending', 'submitting', 'queued', 'in_progress'))
    ORDER BY t.at, t.id
    LIMIT %(limit)s
    FOR UPDATE OF t SKIP LOCKED
), moved AS (
    DELETE FROM public.status_transitions s USING batch b WHERE s.id = b.id
    RETURNING s.id, s.entity, s.entity_id, s.from_status, s.to_status, s.at, s.reason,
              s.workflow_id, s.run_id, s.actor_role, s.actor_user_id
), archived AS (
    INSERT INTO public.archived_status_transitions
        (id, entity, entity_id, from_status, to_status, at, reason, workflow_id, run_id,
         actor_role, actor_user_id, archived_at)
    SELECT id, entity, entity_id, from_status, to_status, at, reason, workflow_id, run_id,
           actor_role, actor_user_id, now()
    FROM moved
    ON CONFLICT (id) DO NOTHING
)
SELECT (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM moved) AS n, last.at AS last_ts, last.id::text AS last_key
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT at, id FROM batch ORDER BY at DESC, id DESC LIMIT 1) AS last ON true

-- name: purge_archived_status_transitions
-- Archived transitions past their archive days are deleted.
WITH batch AS (
    SELECT id, archived_at FROM public.archived_status_transitions
    WHERE archived_at < %(cutoff)s
      AND (archived_at, id) > (coalesce(%(after_ts)s::timestamptz, '-infinity'),
                               coalesce(%(after_key)s::bigint, 0))
    ORDER BY archived_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM public.archived_status_transitions a USING batch b WHERE a.id = b.id
    RETURNING a.id
)
SELECT (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM gone) AS n, last.archived_at AS last_ts, last.id::text AS last_key
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT archived_at, id FROM batch ORDER BY archived_at DESC, id DESC LIMIT 1)
    AS last ON true

-- name: delete_webhook_events
-- Deliveries past their days are forgotten, except those about a gate or a generation
-- still open (a redelivery must still be recognised as one).
WITH batch AS (
    SELECT w.provider, w.event_id, w.received_at FROM public.webhook_events w
    WHERE w.received_at < %(cutoff)s
      AND (w.received_at, w.provider, w.event_id)
          > (coalesce(%(after_ts)s::timestamptz, '-infinity'),
             coalesce(split_part(%(after_key)s::text, chr(31), 1), ''),
             coalesce(split_part(%(after_key)s::text, chr(31), 2), ''))
      AND NOT EXISTS (
          SELECT 1 FROM public.approvals a
          WHERE a.id = CASE WHEN w.subject_id ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                            THEN w.subject_id::uuid END
            AND a.status = 'pending')
      AND NOT EXISTS (
          SELECT 1 FROM public.generations g
          WHERE g.id = CASE WHEN w.subject_id ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                            THEN w.subject_id::uuid END
            AND g.status IN ('pending', 'submitting', 'queued', 'in_progress'))
    ORDER BY w.received_at, w.provider, w.event_id
    LIMIT %(limit)s
    FOR UPDATE OF w SKIP LOCKED
), gone AS (
    DELETE FROM public.webhook_events w USING batch b
    WHERE w.provider = b.provider AND w.event_id = b.event_id
    RETURNING w.provider
)
SELECT (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM gone) AS n, last.received_at AS last_ts,
       last.provider || chr(31) || last.event_id AS last_key
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT received_at, provider, event_id FROM batch
    ORDER BY received_at DESC, provider DESC, event_id DESC LIMIT 1
) AS last ON true

-- name: lock_blobs_of_finished_jobs
-- Screenshots referenced only by jobs that ended before the cutoff (a job step's
-- screenshot_ref or a gate's screenshot_url, 'blob:<id>'), locked for deletion. A blob no
-- job references is kept: it may belong to a job about to record it.
WITH refs AS (
    SELECT substr(s.screenshot_ref, 6) AS blob_id, s.job_id
    FROM public.job_steps s WHERE s.screenshot_ref LIKE 'blob:%%'
    UNION ALL
    SELECT substr(a.screenshot_url, 6), a.job_id
    FROM public.approvals a WHERE a.screenshot_url LIKE 'blob:%%'
)
SELECT b.id, b.created_at, b.object_key FROM public.blobs b
WHERE b.created_at < %(cutoff)s
  AND (b.created_at, b.id) > (coalesce(%(after_ts)s::timestamptz, '-infinity'),
                              coalesce(%(after_key)s::uuid, '00000000-0000-0000-0000-000000000000'))
  AND EXISTS (SELECT 1 FROM refs r WHERE r.blob_id = b.id::text)
  AND NOT EXISTS (
      SELECT 1 FROM refs r JOIN public.jobs j ON j.id = r.job_id
      WHERE r.blob_id = b.id::text
        AND (j.status NOT IN ('completed', 'failed', 'cancelled')
             OR coalesce(j.completed_at, j.updated_at) >= %(cutoff)s))
ORDER BY b.created_at, b.id
LIMIT %(limit)s
FOR UPDATE OF b SKIP LOCKED

-- name: delete_blobs
-- The locked blobs, once their objects are gone.
DELETE FROM public.blobs WHERE id = ANY(%(ids)s::uuid[])
