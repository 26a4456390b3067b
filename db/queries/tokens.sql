-- Renewing credentials (0023): refreshed tokens stored, credentials that fail for good
-- marked, owners told once, reconnections. Every write of a refreshed token is a
-- compare-and-set on the ciphertext that was read, so a reconnect or a key rotation in
-- between is never overwritten by an older secret.

-- name: store_connection_token
-- A refreshed token of a connection, unless its credentials changed since they were read.
UPDATE public.platform_connections
SET credentials = %(credentials)s, token_expires_at = %(expires_at)s, token_refreshed_at = now()
WHERE id = %(id)s AND credentials->>'ciphertext' = %(old)s
RETURNING id

-- name: connection_credentials_state
-- Whether a connection's credentials work, since when not, whether its owner was told, and
-- the owner's address.
SELECT c.id, c.platform, c.account_id, c.account_name, c.credentials_status,
       c.credentials_error, c.credentials_failed_at, c.credentials_notified_at,
       c.created_by AS owner_id, p.email_address AS owner_email
FROM public.platform_connections c
LEFT JOIN public.profiles p ON p.id = c.created_by
WHERE c.id = %(id)s

-- name: reconnect_connection
-- New credentials: they work until shown otherwise; the schedules resume.
UPDATE public.platform_connections
SET credentials = %(credentials)s, token_expires_at = %(expires_at)s,
    token_refreshed_at = CASE WHEN %(expires_at)s::timestamptz IS NULL THEN NULL ELSE now() END,
    credentials_status = 'ok', credentials_error = NULL, credentials_failed_at = NULL,
    credentials_notified_at = NULL, is_active = true
WHERE id = %(id)s
RETURNING id

-- name: insert_threads_account
-- Store a Threads account (token already encrypted); a retry finds the row it created.
INSERT INTO public.threads_accounts
    (id, user_id, threads_user_id, username, access_token, token_expires_at)
VALUES (%(id)s, %(user_id)s, %(threads_user_id)s, %(username)s, %(access_token)s,
        %(expires_at)s)
ON CONFLICT (id) DO NOTHING

-- name: get_threads_account
-- One Threads account by id.
SELECT * FROM public.threads_accounts WHERE id = %(id)s

-- name: threads_accounts_present
-- Whether seed 003's table is there (0023 creates it; an app may have dropped it).
SELECT to_regclass('public.threads_accounts') IS NOT NULL AS present

-- name: list_threads_accounts
-- Every Threads account, oldest first (the refresh schedules mirror this list).
SELECT * FROM public.threads_accounts ORDER BY created_at, id

-- name: store_threads_token
-- A refreshed Threads token, unless the stored one changed since it was read.
UPDATE public.threads_accounts
SET access_token = %(access_token)s, token_expires_at = %(expires_at)s,
    token_refreshed_at = now()
WHERE id = %(id)s AND access_token = %(old)s
RETURNING id

-- name: threads_credentials_state
-- Whether an account's token works, since when not, whether its owner was told, and the
-- owner's address.
SELECT t.id, 'threads' AS platform, t.threads_user_id AS account_id,
       nullif(t.username, '') AS account_name, t.credentials_status, t.credentials_error,
       t.credentials_failed_at, t.credentials_notified_at, t.user_id AS owner_id,
       p.email_address AS owner_email
FROM public.threads_accounts t
LEFT JOIN public.profiles p ON p.id = t.user_id
WHERE t.id = %(id)s

-- name: reconnect_threads
-- A new token for the account: it works until shown otherwise.
UPDATE public.threads_accounts
SET access_token = %(access_token)s, token_expires_at = %(expires_at)s,
    token_refreshed_at = now(), credentials_status = 'ok', credentials_error = NULL,
    credentials_failed_at = NULL, credentials_notified_at = NULL, is_active = true
WHERE id = %(id)s
RETURNING id

-- name: mark_revoked
-- Template (db/tokens.py names the holder's table): its credentials failed for good:
-- revoked, with the reason (once: a retry keeps the first).
UPDATE {table}
SET credentials_status = 'revoked', credentials_error = %(error)s,
    credentials_failed_at = now(), credentials_notified_at = NULL
WHERE id = %(id)s AND credentials_status = 'ok'
RETURNING id

-- name: mark_notified
-- Template: the owner was told of this failure (the one that happened at failed_at).
UPDATE {table} SET credentials_notified_at = now()
WHERE id = %(id)s AND credentials_failed_at = %(failed_at)s
