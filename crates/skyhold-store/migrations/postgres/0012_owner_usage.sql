-- What each owner's live resources take, kept by a trigger as rows change
-- (like resource_summary): instances not stopped, counted per type, and
-- volumes, sized. A quota check reads a few rows per owner here instead of
-- every resource its scopes own, so the section it holds the quota locks
-- for stays short whatever the size of the inventory.
CREATE TABLE owner_usage (
    owner    TEXT COLLATE "C" NOT NULL,
    kind     TEXT COLLATE "C" NOT NULL,
    rtype    TEXT COLLATE "C" NOT NULL,
    n        BIGINT NOT NULL,
    size_gib BIGINT NOT NULL,
    PRIMARY KEY (owner, kind, rtype)
);
INSERT INTO owner_usage (owner, kind, rtype, n, size_gib)
    SELECT LOWER(owner), kind, rtype, COUNT(*), SUM(size_gib)
    FROM resources
    WHERE deleted_at IS NULL AND owner <> '' AND (kind = 'volume'
        OR (kind = 'instance' AND state NOT IN ('stopped', 'stopping', 'terminated', 'shutting-down')))
    GROUP BY LOWER(owner), kind, rtype;

CREATE FUNCTION owner_usage_counts(r resources) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT r.deleted_at IS NULL AND r.owner <> '' AND (r.kind = 'volume'
        OR (r.kind = 'instance' AND r.state NOT IN ('stopped', 'stopping', 'terminated', 'shutting-down')))
$$;
CREATE FUNCTION owner_usage_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND owner_usage_counts(OLD) THEN
        UPDATE owner_usage SET n = n - 1, size_gib = size_gib - OLD.size_gib
        WHERE owner = LOWER(OLD.owner) AND kind = OLD.kind AND rtype = OLD.rtype;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND owner_usage_counts(NEW) THEN
        INSERT INTO owner_usage (owner, kind, rtype, n, size_gib)
        VALUES (LOWER(NEW.owner), NEW.kind, NEW.rtype, 1, NEW.size_gib)
        ON CONFLICT (owner, kind, rtype) DO UPDATE SET
            n = owner_usage.n + 1, size_gib = owner_usage.size_gib + EXCLUDED.size_gib;
    END IF;
    RETURN NULL;
END $$;
-- Only instances and volumes are counted: the other kinds never call the
-- function (ingest of the rest costs nothing more).
CREATE TRIGGER owner_usage_insert AFTER INSERT ON resources
    FOR EACH ROW WHEN (NEW.kind IN ('instance', 'volume')) EXECUTE FUNCTION owner_usage_track();
CREATE TRIGGER owner_usage_delete AFTER DELETE ON resources
    FOR EACH ROW WHEN (OLD.kind IN ('instance', 'volume')) EXECUTE FUNCTION owner_usage_track();
CREATE TRIGGER owner_usage_update
    AFTER UPDATE OF owner, kind, state, rtype, size_gib, deleted_at ON resources
    FOR EACH ROW WHEN (OLD.kind IN ('instance', 'volume') OR NEW.kind IN ('instance', 'volume'))
    EXECUTE FUNCTION owner_usage_track();
