-- name: seen
-- The outcome of a delivery already handled (nothing: a new one).
SELECT outcome FROM public.webhook_events
WHERE provider = %(provider)s AND event_id = %(event_id)s

-- name: record
-- Remember a handled delivery and what came of it, once.
INSERT INTO public.webhook_events (provider, event_id, event_type, subject_id, outcome)
VALUES (%(provider)s, %(event_id)s, %(event_type)s, %(subject_id)s, %(outcome)s)
ON CONFLICT (provider, event_id) DO NOTHING
