-- Shared trigger functions: updated_at maintenance, status state machines and the
-- append-only transition log.

CREATE OR REPLACE FUNCTION public.update_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END
$$;

-- Every status change of a job, approval or generation, whoever makes it. The worker
-- tags its transactions with set_config('orchestrator.*', ..., true) so each row says
-- why and which workflow run made the change.
CREATE TABLE IF NOT EXISTS public.status_transitions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity text NOT NULL,
    entity_id uuid NOT NULL,
    from_status text,
    to_status text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    reason text,
    workflow_id text,
    run_id text
);
CREATE INDEX IF NOT EXISTS status_transitions_entity_idx
    ON public.status_transitions (entity, entity_id, id);
ALTER TABLE public.status_transitions ENABLE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION public.status_transitions_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'status_transitions is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS status_transitions_no_change ON public.status_transitions;
CREATE TRIGGER status_transitions_no_change
    BEFORE UPDATE OR DELETE ON public.status_transitions
    FOR EACH ROW EXECUTE FUNCTION public.status_transitions_append_only();

-- Allowed transitions, one row per edge; the triggers below consult it.
CREATE TABLE IF NOT EXISTS public.status_machine (
    entity text NOT NULL,
    from_status text NOT NULL,
    to_status text NOT NULL,
    PRIMARY KEY (entity, from_status, to_status)
);
ALTER TABLE public.status_machine ENABLE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION public.enforce_status_machine() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    initial text := TG_ARGV[0];
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status IS DISTINCT FROM initial THEN
            RAISE EXCEPTION 'invalid % status on insert: "%" (a new row starts as "%")',
                TG_TABLE_NAME, NEW.status, initial
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT EXISTS (
            SELECT 1 FROM public.status_machine
            WHERE entity = TG_TABLE_NAME AND from_status = OLD.status AND to_status = NEW.status
        ) THEN
            RAISE EXCEPTION 'invalid % status transition for %: "%" -> "%"',
                TG_TABLE_NAME, OLD.id, OLD.status, NEW.status
                USING ERRCODE = 'check_violation',
                      HINT = 'allowed transitions are listed in public.status_machine';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION public.log_status_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO public.status_transitions
            (entity, entity_id, from_status, to_status, reason, workflow_id, run_id)
        VALUES (
            TG_TABLE_NAME,
            NEW.id,
            CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END,
            NEW.status,
            nullif(current_setting('orchestrator.reason', true), ''),
            nullif(current_setting('orchestrator.workflow_id', true), ''),
            nullif(current_setting('orchestrator.run_id', true), '')
        );
    END IF;
    RETURN NULL;
END
$$;
