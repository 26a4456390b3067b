-- The migration ledger is the back end's alone. It used to be public.schema_migrations,
-- where this file turned row level security on and revoked it from anon and
-- authenticated. The ledger is now orchestrator.schema_migrations (issue 25: dbmate,
-- golang-migrate and others use public.schema_migrations), and the runner itself keeps it
-- out of reach (db/migrate.py): a schema the API roles cannot use, RLS on, nothing
-- granted. An earlier ledger of ours is moved there with these settings.
--
-- Rewritten in place; its earlier text is accepted as applied (db/migrate.py, SUPERSEDED).
SELECT 1;
