-- name: insert_memory
-- Keep a memory once: a retry with the same idempotency key writes nothing.
INSERT INTO public.memories (user_id, content, metadata, idempotency_key)
VALUES (%(user_id)s, %(content)s, %(metadata)s, %(idempotency_key)s)
ON CONFLICT (idempotency_key) DO NOTHING
