-- The transition log is written by a trigger on every status change, including changes
-- an app user makes under RLS (seed 003 lets users insert their own generations). That
-- user may not touch status_transitions, so the trigger writes with its owner's rights.
ALTER FUNCTION public.log_status_transition() SECURITY DEFINER;
ALTER FUNCTION public.log_status_transition() SET search_path = public, pg_temp;
