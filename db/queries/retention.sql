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

-- name: archive_batch
-- Template, composed per kind by db/retention.py (its placeholders are named in braces
-- below only): one batch of the table's rows past the cutoff, oldest first from the
-- cursor, moved into its archive with the kind's columns; rows that the kind's keep
-- condition (a kind_keeps_* fragment, on `t`) says must stay are left where they are.
WITH batch AS (
    SELECT t.id, t.{ts} AS ts FROM {table} t
    WHERE t.{ts} < %(cutoff)s
      AND (t.{ts}, t.id) > (coalesce(%(after_ts)s::timestamptz, '-infinity'), %(after_key)s::{key})
      AND {keep}
    ORDER BY t.{ts}, t.id
    LIMIT %(limit)s
    FOR UPDATE OF t SKIP LOCKED
), moved AS (
    DELETE FROM {table} s USING batch b WHERE s.id = b.id RETURNING {returned}
), archived AS (
    INSERT INTO {archive} ({columns}, archived_at)
    SELECT {columns}, now() FROM moved
    ON CONFLICT (id) DO NOTHING
)
SELECT (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM moved) AS n,
       last.ts AS last_ts, last.id::text AS last_key
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT ts, id FROM batch ORDER BY ts DESC, id DESC LIMIT 1) AS last ON true

-- name: purge_batch
-- Template: one batch of an archive's rows archived before the cutoff, deleted. A NULL
-- key in the cursor leaves the row comparison unknown only where the times are equal,
-- and no archived_at equals '-infinity': the first batch starts at the first row.
WITH batch AS (
    SELECT a.id, a.archived_at AS ts FROM {archive} a
    WHERE a.archived_at < %(cutoff)s
      AND (a.archived_at, a.id) > (coalesce(%(after_ts)s::timestamptz, '-infinity'), %(after_key)s::{key})
    ORDER BY a.archived_at, a.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM {archive} a USING batch b WHERE a.id = b.id RETURNING a.id
)
SELECT (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM gone) AS n,
       last.ts AS last_ts, last.id::text AS last_key
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT ts, id FROM batch ORDER BY ts DESC, id DESC LIMIT 1) AS last ON true

-- name: kind_keeps_nothing
-- Seed 002's feed: every row past its days goes.
true

-- name: kind_keeps_unsent
-- Seed 002's queue: rows still to be sent (not processed, attempts left) stay.
(t.is_processed OR t.attempts >= t.max_attempts)

-- name: kind_keeps_open_work
-- The transition log: rows of a job, gate or generation still open stay (its workflow may
-- still read them). Needs tag_retention first in the same transaction (the log refuses
-- deletes otherwise).
NOT EXISTS (
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
