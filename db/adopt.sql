-- Helpers the migrations call to adopt a table that already exists (a seed's, with the
-- app's rows in it) the way they would create it. The runner defines them in pg_temp
-- before each run: they last as long as its session and leave nothing in the schema.
--
-- Each one first looks in the catalog and does nothing when the object is there (under
-- any name, where the name is not what matters), so a migration that uses them applies
-- twice cleanly. None of them rewrites a row or drops anything. Where existing rows do
-- not allow a rule (a NULL where we want NOT NULL, a value outside a CHECK), the rule is
-- left out and a WARNING says so; `orchestrator migrate` prints those warnings.

-- The table's name with its schema, for messages.
CREATE FUNCTION pg_temp.qualified(tbl regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('%s.%s', relnamespace::regnamespace, relname) FROM pg_class WHERE oid = tbl
$$;

CREATE FUNCTION pg_temp.add_check(tbl regclass, name text, expr text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = tbl AND conname = name) THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s WHERE NOT (%s)', tbl, expr) INTO bad;
    IF bad > 0 THEN
        RAISE WARNING '%: % row(s) outside CHECK (%), kept as they are; the check is not added',
            pg_temp.qualified(tbl), bad, expr;
        RETURN;
    END IF;
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%s)', tbl, name, expr);
END
$$;

-- A status column: the values outside the state machine are named in the warning.
CREATE FUNCTION pg_temp.add_status_check(tbl regclass, name text, col text, allowed text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    outside text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = tbl AND conname = name) THEN
        RETURN;
    END IF;
    EXECUTE format(
        'SELECT string_agg(format(''%%L (%%s)'', v, n), '', '' ORDER BY v) FROM '
        '(SELECT %1$I AS v, count(*) AS n FROM %2$s WHERE %1$I <> ALL (%3$L) GROUP BY 1) s',
        col, tbl, allowed) INTO outside;
    IF outside IS NOT NULL THEN
        RAISE WARNING '%.%: rows with a status outside the state machine, kept as they are: %; '
            'the worker will not move them', pg_temp.qualified(tbl), col, outside;
        RETURN;
    END IF;
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I = ANY (%L))',
        tbl, name, col, allowed);
END
$$;

CREATE FUNCTION pg_temp.set_not_null(tbl regclass, col text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    nulls bigint;
BEGIN
    IF (SELECT attnotnull FROM pg_attribute WHERE attrelid = tbl AND attname = col) THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s WHERE %I IS NULL', tbl, col) INTO nulls;
    IF nulls > 0 THEN
        RAISE WARNING '%.%: % row(s) hold NULL, kept as they are; the column stays nullable',
            pg_temp.qualified(tbl), col, nulls;
        RETURN;
    END IF;
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', tbl, col);
END
$$;

-- A default only where the column has none: an app's own default is kept.
CREATE FUNCTION pg_temp.set_default(tbl regclass, col text, expr text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_attrdef d JOIN pg_attribute a
            ON a.attrelid = d.adrelid AND a.attnum = d.adnum
        WHERE d.adrelid = tbl AND a.attname = col
    ) THEN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, col, expr);
    END IF;
END
$$;

-- A foreign key, unless one already leads from these columns (the app's, whatever its
-- name and ON DELETE). Rows that point nowhere are kept: the key is then NOT VALID
-- (checked for new rows only).
CREATE FUNCTION pg_temp.add_foreign_key(tbl regclass, name text, cols text[], ref text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_constraint c
        WHERE c.conrelid = tbl AND c.contype = 'f'
          AND c.conkey = ARRAY(
              SELECT a.attnum FROM unnest(cols) WITH ORDINALITY AS k (col, i)
              JOIN pg_attribute a ON a.attrelid = tbl AND a.attname = k.col ORDER BY k.i
          )::smallint[]
    ) THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%s) REFERENCES %s',
            tbl, name, array_to_string(cols, ', '), ref);
    EXCEPTION WHEN foreign_key_violation THEN
        RAISE WARNING '%: rows whose % point at no row of %, kept as they are; '
            'the key checks new rows only', pg_temp.qualified(tbl), array_to_string(cols, ', '), ref;
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%s) REFERENCES %s '
            'NOT VALID', tbl, name, array_to_string(cols, ', '), ref);
    END;
END
$$;

-- A unique key the worker relies on (retries find their row by it), as a constraint or
-- (``as_index``) a unique index. Duplicates stop the migration with one line: nothing is
-- changed, the operator decides which rows to keep.
CREATE FUNCTION pg_temp.add_unique(tbl regclass, name text, cols text[],
                                   as_index boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    dupes bigint;
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = tbl AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
          AND i.indkey::text = array_to_string(ARRAY(
              SELECT a.attnum FROM unnest(cols) WITH ORDINALITY AS k (col, n)
              JOIN pg_attribute a ON a.attrelid = tbl AND a.attname = k.col ORDER BY k.n
          ), ' ')
    ) THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s WHERE (%s) IS NOT NULL '
        'GROUP BY %s HAVING count(*) > 1) d',
        tbl, array_to_string(cols, ', '), array_to_string(cols, ', ')) INTO dupes;
    IF dupes > 0 THEN
        RAISE EXCEPTION '%: % value(s) of (%) occur more than once; the worker needs them '
            'unique: merge or delete the duplicates, then migrate again',
            pg_temp.qualified(tbl), dupes, array_to_string(cols, ', ')
            USING ERRCODE = 'unique_violation';
    END IF;
    IF as_index THEN
        EXECUTE format('CREATE UNIQUE INDEX %I ON %s (%s)',
            name, tbl, array_to_string(cols, ', '));
    ELSE
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE (%s)',
            tbl, name, array_to_string(cols, ', '));
    END IF;
END
$$;

-- An index, unless one with the same definition exists under any name. ``definition``
-- is written as pg_get_indexdef prints it after the table ("USING btree (user_id)").
CREATE FUNCTION pg_temp.add_index(tbl regclass, name text, definition text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = tbl
          AND (c.relname = name
               OR regexp_replace(pg_get_indexdef(i.indexrelid),
                                 '^CREATE (UNIQUE )?INDEX \S+ ON \S+ ', '') = definition)
    ) THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE INDEX %I ON %s %s', name, tbl, definition);
END
$$;

-- Triggers and policies: by name (ours are named for what they do).
CREATE FUNCTION pg_temp.add_trigger(tbl regclass, name text, definition text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = name) THEN
        EXECUTE format('CREATE TRIGGER %I %s', name, definition);
    END IF;
END
$$;

-- updated_at: unless the table already has a trigger keeping it (seed 003's own
-- update_updated_at() trigger, under whatever name).
CREATE FUNCTION pg_temp.add_updated_at_trigger(tbl regclass, name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE t.tgrelid = tbl AND NOT t.tgisinternal AND p.proname = 'update_updated_at'
    ) THEN
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %s FOR EACH ROW '
            'EXECUTE FUNCTION public.update_updated_at()', name, tbl);
    END IF;
END
$$;

CREATE FUNCTION pg_temp.add_policy(tbl regclass, name text, definition text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = tbl AND polname = name) THEN
        EXECUTE format('CREATE POLICY %I ON %s %s', name, tbl, definition);
    END IF;
END
$$;

CREATE FUNCTION pg_temp.enable_rls(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = tbl) THEN
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    END IF;
END
$$;
