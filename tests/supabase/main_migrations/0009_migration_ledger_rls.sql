-- The migration ledger is the back end's alone. On Supabase every table created in the
-- public schema is granted to anon and authenticated (default privileges), so without row
-- level security the Data API could read the ledger, or delete a row and make a migration
-- run again. Its owner (the role that migrates) is not subject to RLS.
ALTER TABLE public.schema_migrations ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.schema_migrations FROM anon, authenticated;
