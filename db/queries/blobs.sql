-- name: insert_blob
-- Record a blob under its caller-chosen id once: its bytes, or where they were uploaded.
INSERT INTO public.blobs (id, content_type, data, object_key, byte_size)
VALUES (%(id)s, %(content_type)s, %(data)s, %(object_key)s, %(byte_size)s)
ON CONFLICT (id) DO NOTHING

-- name: get_blob
-- A blob's type and its bytes or object key.
SELECT content_type, data, object_key FROM public.blobs WHERE id = %(id)s

-- name: session_owner
-- Whose screenshot: the job that holds the browser session.
SELECT id AS job_id, user_id FROM public.jobs WHERE steel_session_id = %(session_id)s

-- name: has_buckets
-- Whether the database is a Supabase project's (it has Storage's buckets).
SELECT to_regclass('storage.buckets') IS NOT NULL AS present

-- name: bucket_rules
-- Supabase Storage's own rules of a bucket.
SELECT file_size_limit, allowed_mime_types FROM storage.buckets WHERE id = %(bucket)s
