-- name: waiting_generations
-- The user's oldest generations still waiting for a concurrency slot.
SELECT temporal_workflow_id FROM public.generations
WHERE user_id = %(user_id)s AND status = 'pending' AND id <> %(generation_id)s
  AND temporal_workflow_id IS NOT NULL
ORDER BY created_at
LIMIT %(limit)s
