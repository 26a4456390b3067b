-- Retention keeps what a delivery was (issue 27 with issue 28): the archive of
-- notification_queue (0024, seed 002's columns) gains the columns 0029 added to the live
-- table, so an archived delivery still says which event, channel and owner it was for and
-- how it ended. No foreign keys: archived rows outlive their channels and users.

ALTER TABLE public.archived_notification_queue
    ADD COLUMN IF NOT EXISTS event_key text,
    ADD COLUMN IF NOT EXISTS event_type text,
    ADD COLUMN IF NOT EXISTS channel_id uuid,
    ADD COLUMN IF NOT EXISTS user_id uuid,
    ADD COLUMN IF NOT EXISTS org_id uuid,
    ADD COLUMN IF NOT EXISTS outcome text,
    ADD COLUMN IF NOT EXISTS external_id text,
    ADD COLUMN IF NOT EXISTS sent_at timestamptz,
    ADD COLUMN IF NOT EXISTS temporal_workflow_id text;
