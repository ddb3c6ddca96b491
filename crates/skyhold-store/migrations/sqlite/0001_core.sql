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
CREATE INDEX resources_kind_name ON resources (kind, name, id);
CREATE INDEX resources_kind_created ON resources (kind, created_at, id);
CREATE INDEX resources_kind_state ON resources (kind, state, name, id);
CREATE INDEX resources_account_kind ON resources (account, kind, state, created_at, id);

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
