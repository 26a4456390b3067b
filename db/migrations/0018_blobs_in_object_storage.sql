-- Screenshots go to object storage (Supabase Storage's bucket, under the job owner's
-- folder) when the worker has one: the blobs row then keeps the object's key and size
-- instead of its bytes, so emails and the app find the file. Without object storage
-- (the dev stack's default) the bytes stay in the row, as before.
ALTER TABLE public.blobs
    ADD COLUMN IF NOT EXISTS object_key text,
    ADD COLUMN IF NOT EXISTS byte_size bigint;
ALTER TABLE public.blobs ALTER COLUMN data DROP NOT NULL;
SELECT pg_temp.add_check('public.blobs', 'blobs_bytes_or_object',
    'data IS NOT NULL OR object_key IS NOT NULL');
