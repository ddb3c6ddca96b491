-- The summaries (resource_summary, owner_usage) kept per statement instead
-- of per row. A sync writes resources a batch of thousands at a time; the
-- row triggers ran a PL/pgSQL function and an upsert for each row. These
-- triggers
-- run once per statement over its transition tables: the rows' net change
-- grouped by summary key, upserted in key order (so concurrent writers
-- lock the rows they share in the same order).
--
-- Transition tables cannot be combined with column lists, so the update
-- trigger runs for every UPDATE of resources; keys whose count and size
-- did not change are left alone.
DROP TRIGGER resource_summary_insert_delete ON resources;
DROP TRIGGER resource_summary_update ON resources;
DROP FUNCTION resource_summary_track();
DROP TRIGGER owner_usage_insert ON resources;
DROP TRIGGER owner_usage_delete ON resources;
DROP TRIGGER owner_usage_update ON resources;
DROP FUNCTION owner_usage_track();

-- One side's rows (leaving: -1, arriving: +1) grouped by every key.
CREATE TYPE resource_summary_delta AS (
    account TEXT COLLATE "C", region TEXT COLLATE "C", kind TEXT COLLATE "C",
    state TEXT COLLATE "C", rtype TEXT COLLATE "C", owner TEXT COLLATE "C",
    for_owner BOOLEAN, n BIGINT, size_gib BIGINT
);

CREATE FUNCTION resource_summaries_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d resource_summary_delta[] := '{}';
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        d := d || ARRAY(
            SELECT ROW(account, region, kind, state, rtype, LOWER(owner), for_owner,
                       -COUNT(*), -SUM(size_gib))::resource_summary_delta
            FROM (SELECT o.*, owner_usage_counts(o) AS for_owner FROM old_rows o
                  WHERE o.deleted_at IS NULL) x
            GROUP BY account, region, kind, state, rtype, LOWER(owner), for_owner);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        d := d || ARRAY(
            SELECT ROW(account, region, kind, state, rtype, LOWER(owner), for_owner,
                       COUNT(*), SUM(size_gib))::resource_summary_delta
            FROM (SELECT n.*, owner_usage_counts(n) AS for_owner FROM new_rows n
                  WHERE n.deleted_at IS NULL) x
            GROUP BY account, region, kind, state, rtype, LOWER(owner), for_owner);
    END IF;
    WITH delta AS (SELECT * FROM unnest(d)),
    summary AS (
        INSERT INTO resource_summary AS s (account, region, kind, state, rtype, n, size_gib)
        SELECT account, region, kind, state, rtype, SUM(n), SUM(size_gib) FROM delta
        GROUP BY account, region, kind, state, rtype
        HAVING SUM(n) <> 0 OR SUM(size_gib) <> 0
        ORDER BY account, region, kind, state, rtype
        ON CONFLICT (account, region, kind, state, rtype) DO UPDATE SET
            n = s.n + EXCLUDED.n, size_gib = s.size_gib + EXCLUDED.size_gib
    )
    INSERT INTO owner_usage AS u (owner, kind, rtype, n, size_gib)
    SELECT owner, kind, rtype, SUM(n), SUM(size_gib) FROM delta WHERE for_owner
    GROUP BY owner, kind, rtype
    HAVING SUM(n) <> 0 OR SUM(size_gib) <> 0
    ORDER BY owner, kind, rtype
    ON CONFLICT (owner, kind, rtype) DO UPDATE SET
        n = u.n + EXCLUDED.n, size_gib = u.size_gib + EXCLUDED.size_gib;
    RETURN NULL;
END $$;

CREATE TRIGGER resource_summaries_insert AFTER INSERT ON resources
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION resource_summaries_apply();
CREATE TRIGGER resource_summaries_update AFTER UPDATE ON resources
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION resource_summaries_apply();
CREATE TRIGGER resource_summaries_delete AFTER DELETE ON resources
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION resource_summaries_apply();
