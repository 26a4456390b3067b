-- name: snapshot
-- Every schema object as (key, value): one fact per line, its definition as Postgres
-- prints it. System schemas and the session's temporary ones are left out; Supabase's own
-- (auth, storage, extensions) are in, so a change there would show.
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND nspname !~ '^pg_(temp|toast_temp)_'
)
SELECT 'schema ' || nspname AS key, '' AS value FROM ns
UNION ALL
SELECT 'extension ' || e.extname, 'in schema ' || e.extnamespace::regnamespace::text
FROM pg_extension e
UNION ALL
SELECT 'role ' || rolname,
       concat_ws(' ', CASE WHEN rolbypassrls THEN 'bypassrls' END,
                 CASE WHEN rolcanlogin THEN 'login' END)
FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role')
UNION ALL
SELECT CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'v' THEN 'view '
            WHEN 'm' THEN 'view ' WHEN 'S' THEN 'sequence ' ELSE 'index ' END
       || ns.nspname || '.' || c.relname,
       CASE WHEN c.relkind IN ('r', 'p') THEN
           concat_ws(', ', CASE WHEN c.relrowsecurity THEN 'row level security' END,
                     'grants ' || coalesce(
                         (SELECT string_agg(a::text, ' ' ORDER BY a::text)
                          FROM unnest(c.relacl) a), 'default'))
            WHEN c.relkind = 'i' THEN pg_get_indexdef(c.oid)
            ELSE '' END
FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'i', 'S')
UNION ALL
SELECT 'column ' || ns.nspname || '.' || c.relname || '.' || a.attname,
       concat_ws(' ', format_type(a.atttypid, a.atttypmod),
                 CASE WHEN a.attnotnull THEN 'not null' END,
                 'default ' || pg_get_expr(d.adbin, d.adrelid))
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
JOIN ns ON ns.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || ns.nspname || '.' || c.relname || '.' || k.conname,
       pg_get_constraintdef(k.oid) || CASE WHEN k.convalidated THEN '' ELSE ' (not validated)' END
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN ns ON ns.oid = c.relnamespace
UNION ALL
SELECT 'trigger ' || ns.nspname || '.' || c.relname || '.' || t.tgname,
       regexp_replace(pg_get_triggerdef(t.oid), '^CREATE TRIGGER \S+ ', '')
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON ns.oid = c.relnamespace
WHERE NOT t.tgisinternal
UNION ALL
SELECT 'policy ' || ns.nspname || '.' || c.relname || '.' || p.polname,
       concat_ws(' ', 'for ' || p.polcmd::text,
                 'to ' || (SELECT string_agg(CASE WHEN r = 0 THEN 'public'
                                                  ELSE r::regrole::text END, ', ')
                           FROM unnest(p.polroles) r),
                 'using ' || pg_get_expr(p.polqual, p.polrelid),
                 'with check ' || pg_get_expr(p.polwithcheck, p.polrelid))
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN ns ON ns.oid = c.relnamespace
UNION ALL
SELECT 'function ' || ns.nspname || '.' || p.proname
           || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       concat_ws(' ', CASE WHEN p.prosecdef THEN 'security definer' END,
                 array_to_string(p.proconfig, ' '),
                 'body ' || left(md5(regexp_replace(p.prosrc, '\s+', ' ', 'g')), 12))
FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
WHERE NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                    AND d.deptype = 'e')
