-- Added: every accepted webhook delivery, keyed by the provider's delivery id, so a
-- replayed or duplicated delivery is recognised and changes nothing.

CREATE TABLE public.webhook_events (
    provider text NOT NULL,
    event_id text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    event_type text,
    subject_id text, -- the approval or generation the event is about, when known
    outcome text,
    PRIMARY KEY (provider, event_id)
);
ALTER TABLE public.webhook_events ENABLE ROW LEVEL SECURITY;
