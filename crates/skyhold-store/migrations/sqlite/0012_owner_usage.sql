-- What each owner's live resources take, kept by triggers as rows change
-- (like resource_summary): instances not stopped, counted per type, and
-- volumes, sized. A quota check reads a few rows per owner here instead of
-- every resource its scopes own, so the section it holds the quota lock
-- for stays short whatever the size of the inventory.
CREATE TABLE owner_usage (
    owner    TEXT   NOT NULL,
    kind     TEXT   NOT NULL,
    rtype    TEXT   NOT NULL,
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

CREATE TRIGGER owner_usage_insert AFTER INSERT ON resources
WHEN new.deleted_at IS NULL AND new.owner <> '' AND (new.kind = 'volume'
    OR (new.kind = 'instance' AND new.state NOT IN ('stopped', 'stopping', 'terminated', 'shutting-down')))
BEGIN
    INSERT INTO owner_usage (owner, kind, rtype, n, size_gib)
    VALUES (LOWER(new.owner), new.kind, new.rtype, 1, new.size_gib)
    ON CONFLICT (owner, kind, rtype) DO UPDATE SET
        n = n + 1, size_gib = size_gib + excluded.size_gib;
END;
CREATE TRIGGER owner_usage_delete AFTER DELETE ON resources
WHEN old.deleted_at IS NULL AND old.owner <> '' AND (old.kind = 'volume'
    OR (old.kind = 'instance' AND old.state NOT IN ('stopped', 'stopping', 'terminated', 'shutting-down')))
BEGIN
    UPDATE owner_usage SET n = n - 1, size_gib = size_gib - old.size_gib
    WHERE owner = LOWER(old.owner) AND kind = old.kind AND rtype = old.rtype;
END;
CREATE TRIGGER owner_usage_update_old AFTER UPDATE OF owner, kind, state, rtype, size_gib, deleted_at ON resources
WHEN old.deleted_at IS NULL AND old.owner <> '' AND (old.kind = 'volume'
    OR (old.kind = 'instance' AND old.state NOT IN ('stopped', 'stopping', 'terminated', 'shutting-down')))
BEGIN
    UPDATE owner_usage SET n = n - 1, size_gib = size_gib - old.size_gib
    WHERE owner = LOWER(old.owner) AND kind = old.kind AND rtype = old.rtype;
END;
CREATE TRIGGER owner_usage_update_new AFTER UPDATE OF owner, kind, state, rtype, size_gib, deleted_at ON resources
WHEN new.deleted_at IS NULL AND new.owner <> '' AND (new.kind = 'volume'
    OR (new.kind = 'instance' AND new.state NOT IN ('stopped', 'stopping', 'terminated', 'shutting-down')))
BEGIN
    INSERT INTO owner_usage (owner, kind, rtype, n, size_gib)
    VALUES (LOWER(new.owner), new.kind, new.rtype, 1, new.size_gib)
    ON CONFLICT (owner, kind, rtype) DO UPDATE SET
        n = n + 1, size_gib = size_gib + excluded.size_gib;
END;
