-- Notifications that always arrive (issue 27, section 3). Until now nobody was told when
-- a job failed, a generation was flagged NSFW or a sync ended partial. From here on:
--   1. `notification_channels`: where a user's (or an organization's) notifications go:
--      an email address (Resend) or Slack (an incoming-webhook URL, or a bot token and a
--      channel for chat.postMessage), for every event or a chosen few;
--   2. `notification_queue`: seed 002's table (adopted where the app has it), one row per
--      event and channel, kept current by the delivery workflow (attempts, last_error,
--      next_attempt_at, is_processed, processed_at) so a dashboard can show it. Temporal
--      does the retrying; the row is the record, not the queue.

-- 1. Channels -----------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.notification_channels (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid REFERENCES public.profiles (id) ON DELETE CASCADE,
    -- The organization's channel (seed 004). No foreign key here: the teams migration
    -- (0027) creates `organizations` and adds the key to this column.
    org_id uuid,
    kind text NOT NULL CHECK (kind IN ('email', 'slack_webhook', 'slack_bot')),
    -- Which events (job.failed, generation.nsfw, ...); NULL: every event.
    events text[],
    -- email: the address (NULL: the user's profiles.email_address).
    email_to text,
    -- slack_bot: the channel id or name chat.postMessage posts to.
    slack_channel text,
    -- slack_webhook: the webhook URL; slack_bot: the bot token. Encrypted like stored
    -- credentials (v2:<key id>:..., bound to 'notification_channels:<id>'); never in logs.
    secret text,
    -- At most this many messages a minute on this channel (spaced evenly).
    per_minute integer NOT NULL DEFAULT 20 CHECK (per_minute BETWEEN 1 AND 600),
    -- The next free send slot (the rate limit's state; the worker's).
    next_send_at timestamptz,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notification_channels_owner CHECK (user_id IS NOT NULL OR org_id IS NOT NULL),
    CONSTRAINT notification_channels_complete CHECK (
        (kind = 'email' AND secret IS NULL)
        OR (kind = 'slack_webhook' AND secret IS NOT NULL)
        OR (kind = 'slack_bot' AND secret IS NOT NULL AND slack_channel IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS notification_channels_user_idx
    ON public.notification_channels (user_id) WHERE is_active;
CREATE INDEX IF NOT EXISTS notification_channels_org_idx
    ON public.notification_channels (org_id) WHERE is_active;
SELECT pg_temp.add_updated_at_trigger('public.notification_channels',
    'notification_channels_updated_at');

-- 2. The record of each delivery: seed 002's notification_queue -------------------------
CREATE TABLE IF NOT EXISTS public.notification_queue (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Seed 002's notification_config; our rows name their channel instead (channel_id).
    config_id uuid,
    entity_id uuid,
    entity_type varchar(50),
    event_data jsonb,
    is_processed boolean NOT NULL DEFAULT false,
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5,
    next_attempt_at timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
ALTER TABLE public.notification_queue
    -- Added: the event (its key is unique per event), the channel it goes to, how it ended.
    ADD COLUMN IF NOT EXISTS event_key text,
    ADD COLUMN IF NOT EXISTS event_type text,
    ADD COLUMN IF NOT EXISTS channel_id uuid
        REFERENCES public.notification_channels (id) ON DELETE SET NULL,
    ADD COLUMN IF NOT EXISTS user_id uuid,
    ADD COLUMN IF NOT EXISTS org_id uuid,  -- the teams migration may add its foreign key
    ADD COLUMN IF NOT EXISTS outcome text
        CHECK (outcome IN ('sent', 'failed', 'unknown')),
    ADD COLUMN IF NOT EXISTS external_id text,  -- Resend's email id or Slack's message ts
    -- Claim before a Slack post (Slack has no idempotency key): set and committed before
    -- the call; a later attempt that finds it set does not post again.
    ADD COLUMN IF NOT EXISTS send_claimed_at timestamptz,
    ADD COLUMN IF NOT EXISTS sent_at timestamptz,
    ADD COLUMN IF NOT EXISTS temporal_workflow_id text,
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
SELECT pg_temp.set_default('public.notification_queue', c, d)
FROM (VALUES ('is_processed', 'false'), ('attempts', '0'), ('max_attempts', '5'),
             ('created_at', 'now()')) AS v (c, d);
-- One row per event and channel: a repeated event finds its rows (the app's own rows,
-- without an event key, are distinct: NULLs never conflict).
SELECT pg_temp.add_unique('public.notification_queue', 'notification_queue_delivery_key',
    '{event_key,channel_id}', true);
SELECT pg_temp.add_index('public.notification_queue', 'notification_queue_processing_idx',
    'USING btree (is_processed, next_attempt_at) WHERE (is_processed = false)');
SELECT pg_temp.add_index('public.notification_queue', 'notification_queue_user_idx',
    'USING btree (user_id, created_at DESC)');
SELECT pg_temp.add_updated_at_trigger('public.notification_queue',
    'notification_queue_updated_at');

-- 3. Who sees what --------------------------------------------------------------------------
SELECT pg_temp.enable_rls(t) FROM unnest(ARRAY[
    'public.notification_channels', 'public.notification_queue'
]::regclass[]) AS t;
REVOKE ALL ON public.notification_channels, public.notification_queue FROM anon, authenticated;
-- A user reads and manages their own channels, never the secret once stored (the back
-- end encrypts and writes it) nor the rate limit's state.
GRANT SELECT (id, user_id, org_id, kind, events, email_to, slack_channel, per_minute,
              is_active, created_at, updated_at)
    ON public.notification_channels TO authenticated;
GRANT UPDATE (events, email_to, slack_channel, per_minute, is_active)
    ON public.notification_channels TO authenticated;
GRANT DELETE ON public.notification_channels TO authenticated;
SELECT pg_temp.add_policy('public.notification_channels', 'Users manage their own channels',
    'FOR ALL TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())');
-- The dashboard: a user reads the deliveries of their own events.
GRANT SELECT ON public.notification_queue TO authenticated;
SELECT pg_temp.add_policy('public.notification_queue', 'Users read their own notifications',
    'FOR SELECT TO authenticated USING (user_id = auth.uid())');
