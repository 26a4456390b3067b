-- Seed 003 calls its user table `users` (email, name, subscription_tier); seed 000 and
-- the worker call it `profiles` (email_address, full_name, subscription_tier). Where a
-- database holds seed 003's `users`, the worker keeps a profile for each of its rows:
-- the existing rows now, every insert and change from now on (a trigger on `users`).
-- The app goes on writing `users`; the worker reads `profiles`. Both are keyed by the
-- auth user id, so seed 003's tables (which reference `users`) and the worker's (which
-- reference `profiles`) name the same people.
--
-- The copy never stops the app's write: a tier the worker does not know is copied as
-- 'free' (the app's row keeps its own), and an email another profile already has is
-- left out of the copy, with a warning.
DO $$
BEGIN
    IF to_regclass('public.users') IS NULL THEN
        RETURN;
    END IF;
    IF (SELECT count(*) FROM pg_attribute
        WHERE attrelid = 'public.users'::regclass AND NOT attisdropped
          AND attname IN ('id', 'email', 'name', 'subscription_tier')) < 4 THEN
        RAISE WARNING 'public.users is not seed 003''s (id, email, name, subscription_tier): '
            'its rows get no profiles; add them to public.profiles yourself';
        RETURN;
    END IF;

    CREATE OR REPLACE FUNCTION public.profile_from_seed_user() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
    DECLARE
        tier text := CASE WHEN NEW.subscription_tier IN ('free', 'basic', 'pro', 'enterprise')
                          THEN NEW.subscription_tier ELSE 'free' END;
    BEGIN
        BEGIN
            INSERT INTO public.profiles (id, full_name, email_address, subscription_tier)
            VALUES (NEW.id, NEW.name, NEW.email, tier)
            ON CONFLICT (id) DO UPDATE
            SET full_name = EXCLUDED.full_name, email_address = EXCLUDED.email_address,
                subscription_tier = EXCLUDED.subscription_tier;
        EXCEPTION WHEN unique_violation THEN
            RAISE WARNING 'profile of user %: email % belongs to another profile; copied '
                'without it', NEW.id, NEW.email;
            INSERT INTO public.profiles (id, full_name, subscription_tier)
            VALUES (NEW.id, NEW.name, tier)
            ON CONFLICT (id) DO UPDATE
            SET full_name = EXCLUDED.full_name, subscription_tier = EXCLUDED.subscription_tier;
        END;
        RETURN NULL;
    END
    $fn$;

    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'public.users'::regclass AND tgname = 'users_profile_copy')
    THEN
        CREATE TRIGGER users_profile_copy
            AFTER INSERT OR UPDATE OF email, name, subscription_tier ON public.users
            FOR EACH ROW EXECUTE FUNCTION public.profile_from_seed_user();
    END IF;

    -- The rows already there (read only: an UPDATE would touch the app's rows). A profile
    -- that exists (seed 000's, same id) is kept as it is.
    INSERT INTO public.profiles (id, full_name, email_address, subscription_tier)
    SELECT u.id, u.name,
           CASE WHEN count(*) OVER (PARTITION BY u.email) = 1
                 AND NOT EXISTS (SELECT 1 FROM public.profiles p WHERE p.email_address = u.email)
                THEN u.email END,
           CASE WHEN u.subscription_tier IN ('free', 'basic', 'pro', 'enterprise')
                THEN u.subscription_tier ELSE 'free' END
    FROM public.users u
    ON CONFLICT (id) DO NOTHING;
END
$$;
