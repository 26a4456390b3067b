-- Notifications of organizations (issue 27: 0029's channels and deliveries meet 0027's
-- organizations). 0029 gave both tables an org_id without a foreign key (it may run where
-- 0027's tables are missing in a partial upgrade); from here:
--   - an organization's channels and deliveries go with it (channels are deleted with
--     their organization; a delivery's record stays, without its organization);
--   - members read their organizations' channels (never the secret: 0029's column grants)
--     and deliveries; only its admins change or remove its channels. Adding a channel
--     stays with the back end (`orchestrator notifications add`), which encrypts secrets.

-- Rows that name no organization are kept (the keys are then NOT VALID: adopt.sql).
SELECT pg_temp.add_foreign_key('public.notification_channels',
    'notification_channels_org_id_fkey', '{org_id}',
    'public.organizations (id) ON DELETE CASCADE');
SELECT pg_temp.add_foreign_key('public.notification_queue',
    'notification_queue_org_id_fkey', '{org_id}',
    'public.organizations (id) ON DELETE SET NULL');

SELECT pg_temp.add_policy('public.notification_channels',
    'Members read their organizations'' channels',
    'FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()))');
SELECT pg_temp.add_policy('public.notification_channels',
    'Admins change their organizations'' channels',
    'FOR UPDATE TO authenticated USING (public.org_role(org_id) = ''admin'') '
    'WITH CHECK (public.org_role(org_id) = ''admin'')');
SELECT pg_temp.add_policy('public.notification_channels',
    'Admins remove their organizations'' channels',
    'FOR DELETE TO authenticated USING (public.org_role(org_id) = ''admin'')');
SELECT pg_temp.add_policy('public.notification_queue',
    'Members read their organizations'' notifications',
    'FOR SELECT TO authenticated USING (org_id IN (SELECT public.member_org_ids()))');
