-- Retention as seed 002 configures it (issue 28). Seed 002's `retention_policies` says,
-- per kind of record, how many days rows stay where they are (`active_retention_days`)
-- before they are archived, and how many days they then stay in the archive
-- (`archive_retention_days`) before they are deleted; a daily workflow (Retention) does
-- both in small batches and stamps `last_archived_at` / `last_purged_at`. The table is
-- created as the seed writes it where absent and adopted where present; the seed's two
-- default policies, and ours for the worker's own records, are added where missing (an
-- operator's own row for a kind is kept as it is).
--
-- Kinds, and where their rows go:
--   activity_log        seed 002's feed (where the app has it) -> archived_activity_log
--   notification_queue  seed 002's queue, processed or given-up rows -> archived_notification_queue
--   status_transitions  the transition log -> archived_status_transitions
--   webhook_events      deleted after active + archive days (nothing to archive)
--   blobs               screenshots of finished jobs: deleted (and their objects) likewise
-- Nothing that belongs to a job, gate or generation still open is touched.

CREATE TABLE IF NOT EXISTS public.retention_policies (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    entity_type varchar(50) NOT NULL,
    active_retention_days integer NOT NULL CHECK (active_retention_days > 0),
    archive_retention_days integer NOT NULL CHECK (archive_retention_days >= 0),
    last_archived_at timestamptz,
    last_purged_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.retention_policies
    ADD COLUMN IF NOT EXISTS last_archived_at timestamptz,
    ADD COLUMN IF NOT EXISTS last_purged_at timestamptz,
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.set_default('public.retention_policies', 'created_at', 'now()');
SELECT pg_temp.set_default('public.retention_policies', 'updated_at', 'now()');
SELECT pg_temp.add_updated_at_trigger('public.retention_policies', 'retention_policies_updated_at');
SELECT pg_temp.enable_rls('public.retention_policies');

INSERT INTO public.retention_policies (entity_type, active_retention_days, archive_retention_days)
SELECT v.entity_type, v.active_days, v.archive_days
FROM (VALUES ('activity_log', 90, 365),        -- seed 002's defaults
             ('notification_queue', 30, 90),
             ('status_transitions', 90, 365),  -- ours
             ('webhook_events', 30, 0),
             ('blobs', 90, 0)) AS v (entity_type, active_days, archive_days)
WHERE NOT EXISTS (
    SELECT 1 FROM public.retention_policies p WHERE p.entity_type = v.entity_type
);

-- Seed 002's archive of its activity feed, as the seed writes it. Created even where the
-- feed is absent (it references nothing), so a feed the app adds later is archived too.
CREATE TABLE IF NOT EXISTS public.archived_activity_log (
    id uuid PRIMARY KEY,
    user_id uuid,
    entity_type varchar(50),
    entity_id uuid,
    action varchar(50),
    details jsonb,
    created_at timestamptz,
    archived_at timestamptz DEFAULT now()
);
SELECT pg_temp.add_unique('public.archived_activity_log', 'archived_activity_log_id_key', '{id}');
SELECT pg_temp.add_index('public.archived_activity_log', 'archived_activity_log_archived_idx',
    'USING btree (archived_at, id)');
SELECT pg_temp.enable_rls('public.archived_activity_log');

-- Ours: seed 002's notification queue has no archive; its rows, as the seed writes them.
CREATE TABLE public.archived_notification_queue (
    id uuid PRIMARY KEY,
    config_id uuid,
    entity_id uuid,
    entity_type varchar(50),
    event_data jsonb,
    is_processed boolean,
    attempts integer,
    max_attempts integer,
    next_attempt_at timestamptz,
    last_error text,
    created_at timestamptz,
    processed_at timestamptz,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX archived_notification_queue_archived_idx
    ON public.archived_notification_queue (archived_at, id);
ALTER TABLE public.archived_notification_queue ENABLE ROW LEVEL SECURITY;

-- Ours: the transition log's archive, row for row.
CREATE TABLE public.archived_status_transitions (
    id bigint PRIMARY KEY,
    entity text NOT NULL,
    entity_id uuid NOT NULL,
    from_status text,
    to_status text NOT NULL,
    at timestamptz NOT NULL,
    reason text,
    workflow_id text,
    run_id text,
    actor_role text,
    actor_user_id uuid,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX archived_status_transitions_archived_idx
    ON public.archived_status_transitions (archived_at, id);
CREATE INDEX archived_status_transitions_entity_idx
    ON public.archived_status_transitions (entity, entity_id, id);
ALTER TABLE public.archived_status_transitions ENABLE ROW LEVEL SECURITY;

-- Batches walk each table in time order.
CREATE INDEX IF NOT EXISTS status_transitions_at_idx ON public.status_transitions (at, id);
CREATE INDEX IF NOT EXISTS webhook_events_received_idx ON public.webhook_events (received_at);

-- The transition log stays append-only for everyone, except the back end's retention,
-- which says so in its own transaction (set_config('orchestrator.retention', 'archive',
-- true)) and runs as the table's owner or a role that bypasses row level security. Any
-- session may set a custom setting, so the role is checked too; users have no DELETE
-- privilege on the table in the first place (0013).
CREATE OR REPLACE FUNCTION public.status_transitions_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    actor text := CASE WHEN current_setting('role') = 'none' THEN session_user::text
                       ELSE current_setting('role') END;
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('orchestrator.retention', true) = 'archive'
       AND coalesce((
           SELECT r.rolsuper OR r.rolbypassrls OR pg_has_role(r.oid, c.relowner, 'MEMBER')
           FROM pg_catalog.pg_roles r, pg_catalog.pg_class c
           WHERE r.rolname = actor AND c.oid = TG_RELID), false) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'status_transitions is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- The back end's alone: policies and archives are not the app users'.
REVOKE ALL ON public.retention_policies, public.archived_activity_log,
    public.archived_notification_queue, public.archived_status_transitions
    FROM anon, authenticated;
