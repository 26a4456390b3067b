-- name: insert_generation
-- Create the generation once; a retry finds the row it created.
INSERT INTO public.generations
    (id, user_id, prompt_id, prompt_text, model, settings, temporal_workflow_id,
     batch_id)
VALUES (%(id)s, %(user_id)s, %(prompt_id)s, %(prompt_text)s, %(model)s, %(settings)s,
        %(temporal_workflow_id)s, %(batch_id)s)
ON CONFLICT (id) DO NOTHING

-- name: get_generation
-- One generation by id.
SELECT * FROM public.generations WHERE id = %(id)s

-- name: list_generations
-- Most recent generations, optionally of one status or user.
SELECT * FROM public.generations
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(user_id)s::uuid IS NULL OR user_id = %(user_id)s)
ORDER BY created_at DESC
LIMIT %(limit)s

-- name: prompt_text
-- The text of a stored prompt of this user.
SELECT prompt_text FROM public.prompts WHERE id = %(id)s AND user_id = %(user_id)s

-- name: user_tier
-- The user's subscription tier (sets the concurrent-generation limit).
SELECT subscription_tier FROM public.profiles WHERE id = %(user_id)s

-- name: lock_user_slots
-- Serialise slot checks of one user inside the current transaction.
SELECT pg_advisory_xact_lock(hashtextextended('generation-slots:' || %(user_id)s::text, 0))

-- name: active_generations
-- Generations of the user that hold a slot (submitted and not finished).
SELECT count(*) AS active FROM public.generations
WHERE user_id = %(user_id)s AND status IN ('submitting', 'queued', 'in_progress')

-- name: claim_submission
-- Claim the one submit call a generation ever gets, in one statement: only the first
-- caller gets a row back, and only while the generation is submitting and no call was
-- ever started. Concurrent claims queue on the row lock; the later ones find the marker
-- set and return nothing. The returned submit_started_at identifies this claim.
UPDATE public.generations SET submit_started_at = clock_timestamp()
WHERE id = %(id)s AND status = 'submitting'
  AND submit_started_at IS NULL AND higgsfield_job_id IS NULL
RETURNING submit_started_at

-- name: bound_statement
-- Cancel the transaction's next statements after this many milliseconds.
SELECT set_config('statement_timeout', %(ms)s, true)

-- name: release_submission
-- The claimed call certainly did not reach Higgsfield (refused or not connected): a retry
-- may claim again. Only the holder of this claim releases it.
UPDATE public.generations SET submit_started_at = NULL
WHERE id = %(id)s AND submit_started_at = %(claimed_at)s AND higgsfield_job_id IS NULL

-- name: user_api_key
-- The user's encrypted key for a service.
SELECT encrypted_api_key FROM public.user_api_keys
WHERE user_id = %(user_id)s AND service = %(service)s

-- name: upsert_user_api_key
-- Store (or replace) the user's encrypted key for a service.
INSERT INTO public.user_api_keys (user_id, service, encrypted_api_key)
VALUES (%(user_id)s, %(service)s, %(encrypted_api_key)s)
ON CONFLICT (user_id, service) DO UPDATE SET encrypted_api_key = EXCLUDED.encrypted_api_key

-- name: insert_asset
-- Record a stored result file once (the path is unique); returns its id.
INSERT INTO public.assets (user_id, filename, file_path, file_type, mime_type, file_size,
                           metadata)
VALUES (%(user_id)s, %(filename)s, %(file_path)s, 'image', %(mime_type)s, %(file_size)s,
        %(metadata)s)
ON CONFLICT (file_path) DO UPDATE SET file_size = EXCLUDED.file_size
RETURNING id

-- name: set_saved_assets
-- The generation's copies in asset storage.
UPDATE public.generations SET saved_asset_ids = %(asset_ids)s WHERE id = %(id)s

-- name: waiting_generations
-- The user's oldest generations still waiting for a concurrency slot.
SELECT temporal_workflow_id FROM public.generations
WHERE user_id = %(user_id)s AND status = 'pending' AND id <> %(generation_id)s
  AND temporal_workflow_id IS NOT NULL
ORDER BY created_at
LIMIT %(limit)s

-- name: note_error
-- Say on the row why something asked of it could not happen (its status stays).
UPDATE public.generations SET error_message = %(msg)s WHERE id = %(id)s
