-- Seed 003's Storage: private bucket `assets`, 50 MB limit, MIME whitelist, folder-based
-- RLS (objects under <user_id>/...). Made in the dashboard, i.e. by Supabase's own role.
INSERT INTO storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
VALUES ('assets', 'assets', false, 52428800, ARRAY[
    'image/jpeg', 'image/png', 'image/webp', 'image/gif',
    'video/mp4', 'video/quicktime', 'video/webm',
    'audio/mpeg', 'audio/wav', 'audio/mp4',
    'application/pdf'
]);
CREATE POLICY "Users read their own assets" ON storage.objects FOR SELECT TO authenticated
    USING (bucket_id = 'assets' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "Users upload their own assets" ON storage.objects FOR INSERT TO authenticated
    WITH CHECK (bucket_id = 'assets' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "Users delete their own assets" ON storage.objects FOR DELETE TO authenticated
    USING (bucket_id = 'assets' AND (storage.foldername(name))[1] = auth.uid()::text);
