-- Self-service launch, second part: one row per launch, written before the
-- first provider call (the intent) and settled with what exists after it.
-- SQLite dialect; keep in step with migrations/postgres.
CREATE TABLE launches (
    id                INTEGER PRIMARY KEY,
    -- The `skyhold:launch-id` tag on every instance of the launch, from
    -- which the ClientTokens derive; unique across installations.
    token             TEXT    NOT NULL UNIQUE,
    idempotency_key   TEXT    NOT NULL UNIQUE,
    blueprint_id      BIGINT  NOT NULL,
    blueprint_name    TEXT    NOT NULL,
    blueprint_version BIGINT  NOT NULL,
    account           TEXT    NOT NULL,
    region            TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    instance_type     TEXT    NOT NULL,
    count             BIGINT  NOT NULL,
    owner             TEXT    NOT NULL,  -- the owner tag's value: `ann`, `group:dev`
    requested_by      BIGINT,
    requested_by_name TEXT    NOT NULL,
    params            TEXT    NOT NULL,  -- JSON: the plan (servers, image, packages, expiry)
    state             TEXT    NOT NULL,  -- running | succeeded | partial | failed
    instances         TEXT    NOT NULL,  -- JSON: what exists, per server
    error_code        TEXT    NOT NULL,
    error             TEXT    NOT NULL,
    reservation_id    BIGINT,
    created_at        BIGINT  NOT NULL,
    finished_at       BIGINT
);
CREATE INDEX launches_owner ON launches (owner, id);
CREATE INDEX launches_requested_by ON launches (requested_by, id);
CREATE INDEX launches_unsettled ON launches (id) WHERE state = 'running';

-- The key hook's per-instance secrets (SHA-256; the secret itself is only
-- in the instance's user data). Bound to the instance once it exists.
CREATE TABLE instance_secrets (
    id           INTEGER PRIMARY KEY,
    launch_id    BIGINT  NOT NULL,
    server_index BIGINT  NOT NULL,
    account      TEXT    NOT NULL,
    region       TEXT    NOT NULL,
    provider_id  TEXT    NOT NULL,  -- '' until the instance exists
    secret_hash  TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    UNIQUE (launch_id, server_index)
);
CREATE INDEX instance_secrets_provider ON instance_secrets (provider_id);

-- What an action made (an image's id), as JSON.
ALTER TABLE actions ADD COLUMN result TEXT NOT NULL DEFAULT '{}';

-- The DNS records skyhold made for launched servers (and only those: a
-- record skyhold did not make is never touched). `wanted` until the
-- server has an address, `present` once written, `removed` once the
-- server is gone and the record deleted.
CREATE TABLE dns_records (
    id           INTEGER PRIMARY KEY,
    account      TEXT    NOT NULL,
    region       TEXT    NOT NULL,
    zone_id      TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    rtype        TEXT    NOT NULL,
    provider_id  TEXT    NOT NULL,  -- the instance
    launch_id    BIGINT,
    value        TEXT    NOT NULL,  -- the address written, '' before
    state        TEXT    NOT NULL,
    error        TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE UNIQUE INDEX dns_records_live ON dns_records (zone_id, name, rtype) WHERE state <> 'removed';
