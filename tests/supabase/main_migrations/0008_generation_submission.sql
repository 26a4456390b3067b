-- Added for exactly-once submission to Higgsfield: the moment a submit call may have
-- reached Higgsfield is recorded before the call, so a retry after a crash knows the
-- outcome of the earlier call is unknown and does not submit again.
ALTER TABLE public.generations ADD COLUMN submit_started_at timestamptz;
