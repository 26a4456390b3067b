-- Stored credentials, for `orchestrator keys rotate`: read in primary-key order, a batch
-- at a time, and each value replaced only if it is still the one that was read.

-- name: user_api_keys_batch
-- The next batch of users' encrypted API keys after id %(after)s (NULL: from the start).
SELECT id, user_id, service, encrypted_api_key AS ciphertext FROM public.user_api_keys
WHERE %(after)s::uuid IS NULL OR id > %(after)s::uuid
ORDER BY id
LIMIT %(limit)s

-- name: replace_user_api_key
-- Swap in a re-encrypted key, unless the stored one changed since it was read.
UPDATE public.user_api_keys SET encrypted_api_key = %(new)s
WHERE id = %(id)s AND encrypted_api_key = %(old)s

-- name: connection_credentials_batch
-- The next batch of connections' encrypted credentials after id %(after)s (NULL: from the start).
SELECT id, credentials->>'ciphertext' AS ciphertext FROM public.platform_connections
WHERE %(after)s::uuid IS NULL OR id > %(after)s::uuid
ORDER BY id
LIMIT %(limit)s

-- name: replace_connection_credentials
-- Swap in re-encrypted credentials, unless the stored ones changed since they were read.
UPDATE public.platform_connections
SET credentials = jsonb_set(credentials, '{ciphertext}', to_jsonb(%(new)s::text))
WHERE id = %(id)s AND credentials->>'ciphertext' = %(old)s

-- name: threads_tokens_batch
-- The next batch of Threads accounts' encrypted tokens after id %(after)s (NULL: from the start).
SELECT id, access_token AS ciphertext FROM public.threads_accounts
WHERE %(after)s::uuid IS NULL OR id > %(after)s::uuid
ORDER BY id
LIMIT %(limit)s

-- name: replace_threads_token
-- Swap in a re-encrypted token, unless the stored one changed since it was read.
UPDATE public.threads_accounts SET access_token = %(new)s
WHERE id = %(id)s AND access_token = %(old)s
-- name: notification_channel_secrets_batch
-- The next batch of notification channels' encrypted secrets (webhook URLs, bot tokens).
SELECT id, secret AS ciphertext FROM public.notification_channels
WHERE secret IS NOT NULL AND (%(after)s::uuid IS NULL OR id > %(after)s::uuid)
ORDER BY id
LIMIT %(limit)s

-- name: replace_notification_channel_secret
-- Swap in a re-encrypted secret, unless the stored one changed since it was read.
UPDATE public.notification_channels SET secret = %(new)s
WHERE id = %(id)s AND secret = %(old)s
