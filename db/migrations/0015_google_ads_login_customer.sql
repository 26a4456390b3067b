-- Google Ads: a customer reached through a manager account is read with the manager's
-- customer id in the login-customer-id header of every request. It belongs to the
-- connection (which manager links this agency to the account) and is an id, not a secret.
ALTER TABLE public.platform_connections
    ADD COLUMN login_customer_id varchar(10)
        CHECK (login_customer_id ~ '^[0-9]{10}$'),
    ADD CONSTRAINT platform_connections_login_customer_google_only
        CHECK (login_customer_id IS NULL OR platform = 'google_ads');
