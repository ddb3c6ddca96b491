-- Core schema, SQLite dialect. Keep in step with migrations/postgres.
-- Times are BIGINT milliseconds since the Unix epoch in both dialects, so the
-- store code binds and reads the same types on both backends.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,            -- argon2id PHC string
    role          TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

-- Browser sessions. Only a SHA-256 of the cookie value is stored, so a leaked
-- database does not leak live sessions.
CREATE TABLE sessions (
    token_hash  TEXT    PRIMARY KEY,
    user_id     BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);

-- API tokens, stored hashed; revoked ones are kept (revoked_at) for audit.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

-- The inventory cache. Sortable/filterable fields are real columns (NOT NULL,
-- '' for none) so keyset pagination never meets NULLs; everything else lives
-- in the JSON attributes. `search` is the lower-case haystack for free text;
-- `fingerprint` lets a sync skip unchanged rows without comparing fields.
CREATE TABLE resources (
    id          INTEGER PRIMARY KEY,
    account     TEXT    NOT NULL,
    region      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    provider_id TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    rtype       TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    private_ip  TEXT    NOT NULL,
    public_ip   TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,   -- launch/creation time, 0 when unknown
    size_gib    BIGINT  NOT NULL,
    tags        TEXT    NOT NULL,   -- JSON object
    attributes  TEXT    NOT NULL,   -- JSON object
    search      TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    first_seen  BIGINT  NOT NULL,
    last_seen   BIGINT  NOT NULL,   -- last time this row was written
    deleted_at  BIGINT,             -- tombstone; NULL while it exists
    UNIQUE (account, region, kind, provider_id)
);
-- Listing indexes cover live rows only (partial, WHERE deleted_at IS NULL):
-- every default listing filters on that, and tombstones then cost nothing.
-- One per sortable column, led by kind, with id last for keyset paging.
CREATE INDEX resources_live_name ON resources (kind, name, id) WHERE deleted_at IS NULL;
CREATE INDEX resources_live_created ON resources (kind, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX resources_live_state ON resources (kind, state, name, id) WHERE deleted_at IS NULL;
CREATE INDEX resources_live_account ON resources (kind, account, state, name, id) WHERE deleted_at IS NULL;
CREATE INDEX resources_live_region ON resources (kind, region, name, id) WHERE deleted_at IS NULL;
CREATE INDEX resources_live_type ON resources (kind, rtype, id) WHERE deleted_at IS NULL;
CREATE INDEX resources_live_owner ON resources (kind, owner, id) WHERE deleted_at IS NULL;
CREATE INDEX resources_live_private_ip ON resources (kind, private_ip, id) WHERE deleted_at IS NULL;
CREATE INDEX resources_live_public_ip ON resources (kind, public_ip, id) WHERE deleted_at IS NULL;
CREATE INDEX resources_live_provider_id ON resources (kind, provider_id, id) WHERE deleted_at IS NULL;

-- Free text: a trigram full-text index over `search`, so a substring search
-- does not read every row. External content: the triggers keep it in step.
CREATE VIRTUAL TABLE resources_fts USING fts5(search, content='resources', content_rowid='id', tokenize='trigram');
CREATE TRIGGER resources_fts_insert AFTER INSERT ON resources BEGIN
    INSERT INTO resources_fts (rowid, search) VALUES (new.id, new.search);
END;
CREATE TRIGGER resources_fts_delete AFTER DELETE ON resources BEGIN
    INSERT INTO resources_fts (resources_fts, rowid, search) VALUES ('delete', old.id, old.search);
END;
CREATE TRIGGER resources_fts_update AFTER UPDATE OF search ON resources BEGIN
    INSERT INTO resources_fts (resources_fts, rowid, search) VALUES ('delete', old.id, old.search);
    INSERT INTO resources_fts (rowid, search) VALUES (new.id, new.search);
END;

-- One row per (account, region, kind): the reconciler's recorded status.
CREATE TABLE sync_status (
    account      TEXT   NOT NULL,
    region       TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    last_attempt BIGINT NOT NULL,
    last_success BIGINT,
    duration_ms  BIGINT NOT NULL,
    item_count   BIGINT NOT NULL,
    last_error   TEXT,
    PRIMARY KEY (account, region, kind)
);
