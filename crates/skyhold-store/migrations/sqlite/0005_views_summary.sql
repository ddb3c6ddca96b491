-- Saved views: named searches, one set per user.
CREATE TABLE saved_views (
    id         INTEGER PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    query      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    UNIQUE (user_id, name)
);

-- The dashboard's figures, kept by triggers as rows change: live resources
-- counted (and sized) per (account, region, kind, state, type). Reading it
-- costs a few hundred rows whatever the size of the inventory.
CREATE TABLE resource_summary (
    account  TEXT   NOT NULL,
    region   TEXT   NOT NULL,
    kind     TEXT   NOT NULL,
    state    TEXT   NOT NULL,
    rtype    TEXT   NOT NULL,
    n        BIGINT NOT NULL,
    size_gib BIGINT NOT NULL,
    PRIMARY KEY (account, region, kind, state, rtype)
);
INSERT INTO resource_summary (account, region, kind, state, rtype, n, size_gib)
    SELECT account, region, kind, state, rtype, COUNT(*), SUM(size_gib)
    FROM resources WHERE deleted_at IS NULL
    GROUP BY account, region, kind, state, rtype;

CREATE TRIGGER resource_summary_insert AFTER INSERT ON resources
WHEN new.deleted_at IS NULL BEGIN
    INSERT INTO resource_summary (account, region, kind, state, rtype, n, size_gib)
    VALUES (new.account, new.region, new.kind, new.state, new.rtype, 1, new.size_gib)
    ON CONFLICT (account, region, kind, state, rtype) DO UPDATE SET
        n = n + 1, size_gib = size_gib + excluded.size_gib;
END;
CREATE TRIGGER resource_summary_delete AFTER DELETE ON resources
WHEN old.deleted_at IS NULL BEGIN
    UPDATE resource_summary SET n = n - 1, size_gib = size_gib - old.size_gib
    WHERE account = old.account AND region = old.region AND kind = old.kind
      AND state = old.state AND rtype = old.rtype;
END;
CREATE TRIGGER resource_summary_update_old AFTER UPDATE OF account, region, kind, state, rtype, size_gib, deleted_at ON resources
WHEN old.deleted_at IS NULL BEGIN
    UPDATE resource_summary SET n = n - 1, size_gib = size_gib - old.size_gib
    WHERE account = old.account AND region = old.region AND kind = old.kind
      AND state = old.state AND rtype = old.rtype;
END;
CREATE TRIGGER resource_summary_update_new AFTER UPDATE OF account, region, kind, state, rtype, size_gib, deleted_at ON resources
WHEN new.deleted_at IS NULL BEGIN
    INSERT INTO resource_summary (account, region, kind, state, rtype, n, size_gib)
    VALUES (new.account, new.region, new.kind, new.state, new.rtype, 1, new.size_gib)
    ON CONFLICT (account, region, kind, state, rtype) DO UPDATE SET
        n = n + 1, size_gib = size_gib + excluded.size_gib;
END;

-- "Stopped for more than N days": stopped instances by their stop time.
CREATE INDEX resources_live_stopped_at ON resources (json_extract(attributes, '$.stopped_at'))
    WHERE deleted_at IS NULL AND kind = 'instance' AND state = 'stopped';
