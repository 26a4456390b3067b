-- The app starts, cancels and decides work (issue 26). Until now only the CLI or a
-- Temporal client could start a job or a generation; seed 003's front end inserts a
-- `generations` row and polls it, seed 000's assistant writes `jobs`. From here on:
--   1. a row the app inserts as `pending` (with no workflow yet) is picked up by the
--      worker's dispatcher: a NOTIFY on insert for speed, a periodic sweep for anything
--      missed; the dispatcher validates it, starts its workflow (id from the row id) and
--      records the workflow id, or ends the row `failed` with a readable error_message;
--   2. the app asks for a cancel by setting `cancel_requested_at` on its own row (set
--      once, stamped by the database); the dispatcher cancels the workflow, whose own
--      cleanup ends the row `cancelled`;
--   3. a batch of variations (seed 003: five prompts, prompt_index 0-4) is the rows that
--      share a `batch_id`, each naming the same `batch_size`: it starts as one
--      GenerationBatch once all `batch_size` rows are there;
--   4. the HTTP API's idempotency keys, and the decision channel `app`.

-- 1. What the app may write -------------------------------------------------------------
ALTER TABLE public.jobs
    ADD COLUMN plan jsonb,                       -- {"steps": [...], "on_rejection": "stop"}
    ADD COLUMN cancel_requested_at timestamptz,  -- the app's cancel request
    ADD COLUMN cancel_delivered_at timestamptz;  -- the worker's: the cancel reached Temporal
ALTER TABLE public.generations
    ADD COLUMN batch_size integer CHECK (batch_size BETWEEN 1 AND 5),
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN cancel_delivered_at timestamptz,
    ADD CONSTRAINT generations_batch_size_needs_batch
        CHECK (batch_size IS NULL OR batch_id IS NOT NULL);

GRANT INSERT (plan) ON public.jobs TO authenticated;
GRANT UPDATE (cancel_requested_at) ON public.jobs TO authenticated;
GRANT INSERT (batch_id, batch_size) ON public.generations TO authenticated;
GRANT UPDATE (cancel_requested_at) ON public.generations TO authenticated;
-- The column grants above are the only columns users may update; these policies say on
-- which rows (their own).
CREATE POLICY "Users request cancellation of their own jobs" ON public.jobs
    FOR UPDATE TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY "Users request cancellation of their own generations" ON public.generations
    FOR UPDATE TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

-- A cancel request is stamped by the database's clock, once: a later write (a second
-- request, or NULL to take it back) keeps the first. A cancel cannot be taken back.
CREATE FUNCTION public.stamp_cancel_request() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF OLD.cancel_requested_at IS NOT NULL THEN
        NEW.cancel_requested_at := OLD.cancel_requested_at;
    ELSIF NEW.cancel_requested_at IS NOT NULL THEN
        NEW.cancel_requested_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_cancel_request BEFORE UPDATE OF cancel_requested_at ON public.jobs
    FOR EACH ROW EXECUTE FUNCTION public.stamp_cancel_request();
CREATE TRIGGER generations_cancel_request
    BEFORE UPDATE OF cancel_requested_at ON public.generations
    FOR EACH ROW EXECUTE FUNCTION public.stamp_cancel_request();
-- On insert, a row cannot arrive already cancelled-on-request: the column is not granted
-- for INSERT, and the worker never sets it on insert.

-- A batch id belongs to one user: the batch workflow's id is generation-batch-<batch_id>,
-- so another user's rows naming it would be taken for theirs. SECURITY DEFINER: the check
-- must see rows row level security hides from the inserting user.
CREATE FUNCTION public.check_batch_owner() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.batch_id IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('generation-batch:' || NEW.batch_id::text, 0));
    IF EXISTS (SELECT 1 FROM public.generations g
               WHERE g.batch_id = NEW.batch_id AND g.user_id <> NEW.user_id) THEN
        RAISE EXCEPTION 'batch % belongs to another user', NEW.batch_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER generations_batch_owner BEFORE INSERT OR UPDATE OF batch_id, user_id
    ON public.generations
    FOR EACH ROW EXECUTE FUNCTION public.check_batch_owner();

-- 2. Telling the dispatcher ------------------------------------------------------------
-- NOTIFY is transactional: the dispatcher hears of a row once its insert committed. The
-- payload is '<table>:<id>'; the dispatcher reads the row itself (a notification is only
-- a hint, and the sweep finds whatever was not heard).
CREATE FUNCTION public.notify_dispatch() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('orchestrator_dispatch', TG_TABLE_NAME || ':' || NEW.id::text);
    RETURN NULL;
END
$$;
-- Rows the worker creates itself (a workflow persisting its own row) carry their workflow
-- id from the start and are not the dispatcher's.
CREATE TRIGGER jobs_dispatch_new AFTER INSERT ON public.jobs
    FOR EACH ROW WHEN (NEW.status = 'pending' AND NEW.temporal_workflow_id IS NULL)
    EXECUTE FUNCTION public.notify_dispatch();
CREATE TRIGGER jobs_dispatch_cancel AFTER UPDATE OF cancel_requested_at ON public.jobs
    FOR EACH ROW WHEN (OLD.cancel_requested_at IS NULL AND NEW.cancel_requested_at IS NOT NULL)
    EXECUTE FUNCTION public.notify_dispatch();
CREATE TRIGGER generations_dispatch_new AFTER INSERT ON public.generations
    FOR EACH ROW WHEN (NEW.status = 'pending' AND NEW.temporal_workflow_id IS NULL)
    EXECUTE FUNCTION public.notify_dispatch();
CREATE TRIGGER generations_dispatch_cancel AFTER UPDATE OF cancel_requested_at
    ON public.generations
    FOR EACH ROW WHEN (OLD.cancel_requested_at IS NULL AND NEW.cancel_requested_at IS NOT NULL)
    EXECUTE FUNCTION public.notify_dispatch();

-- What the sweep looks for, kept small by partial indexes.
CREATE INDEX jobs_undispatched_idx ON public.jobs (created_at)
    WHERE temporal_workflow_id IS NULL AND status = 'pending';
CREATE INDEX generations_undispatched_idx ON public.generations (created_at)
    WHERE temporal_workflow_id IS NULL AND status = 'pending';
CREATE INDEX jobs_cancel_undelivered_idx ON public.jobs (cancel_requested_at)
    WHERE cancel_requested_at IS NOT NULL AND cancel_delivered_at IS NULL;
CREATE INDEX generations_cancel_undelivered_idx ON public.generations (cancel_requested_at)
    WHERE cancel_requested_at IS NOT NULL AND cancel_delivered_at IS NULL;
CREATE INDEX generations_batch_idx ON public.generations (batch_id) WHERE batch_id IS NOT NULL;

-- 3. Idempotency keys of the HTTP API ---------------------------------------------------
-- A POST with an Idempotency-Key that was seen before returns the first answer; the same
-- key with another request is refused. The back end's alone.
CREATE TABLE public.api_idempotency_keys (
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash text NOT NULL,
    status_code integer,
    response jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (user_id, key)
);
ALTER TABLE public.api_idempotency_keys ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.api_idempotency_keys FROM anon, authenticated;

-- 4. Decisions made in the app ----------------------------------------------------------
ALTER TABLE public.approvals DROP CONSTRAINT approvals_decision_channel_check;
ALTER TABLE public.approvals ADD CONSTRAINT approvals_decision_channel_check
    CHECK (decision_channel IN ('email', 'link', 'ui', 'cli', 'app'));
