-- Acting safely: users gain email and a disabled time, groups and their
-- members, the one grants table, SSH keys, the hash-chained audit log, the
-- action pipeline's rows and API idempotency keys. SQLite dialect; keep in
-- step with migrations/postgres. Roles are text: admin, member, viewer and
-- auditor (existing admin/viewer rows are unchanged).

ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
-- How the user was created: local, proxy (auto-created from a trusted
-- header) or oidc.
-- How a session was started: password, proxy or oidc (for the audit log).
ALTER TABLE sessions ADD COLUMN method TEXT NOT NULL DEFAULT 'password';
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';

CREATE TABLE ssh_keys (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    public_key  TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    UNIQUE (user_id, fingerprint)
);

CREATE TABLE groups (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL
);

CREATE TABLE group_members (
    group_id BIGINT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id, group_id);

-- Every permission grant: a subject (a user or a group, by id) holds a level
-- on an object. object_key is the account name, the resource id, or the
-- group's or user's id, written as text. Later object kinds (blueprints,
-- clusters) use the same table.
CREATE TABLE grants (
    id           INTEGER PRIMARY KEY,
    subject_kind TEXT    NOT NULL,  -- user | group
    subject_id   BIGINT  NOT NULL,
    object_kind  TEXT    NOT NULL,  -- account | resource | group | user
    object_key   TEXT    NOT NULL,
    level        TEXT    NOT NULL,  -- view | operate | manage
    created_by   BIGINT,
    created_at   BIGINT  NOT NULL,
    UNIQUE (subject_kind, subject_id, object_kind, object_key)
);
CREATE INDEX grants_object ON grants (object_kind, object_key);

-- The audit log: append-only and hash-chained (see skyhold-core audit.rs for
-- the canonical encoding). seq is gap-free; audit_head holds the last seq and
-- hash and is updated in the same transaction as every append, which
-- serializes appenders.
CREATE TABLE audit_log (
    seq                BIGINT  PRIMARY KEY,
    time               BIGINT  NOT NULL,
    actor_id           BIGINT,
    actor              TEXT    NOT NULL,
    auth               TEXT    NOT NULL,
    client_ip          TEXT    NOT NULL,
    user_agent         TEXT    NOT NULL,
    request_id         TEXT    NOT NULL,
    idempotency_key    TEXT    NOT NULL,
    action             TEXT    NOT NULL,
    target_kind        TEXT    NOT NULL,
    target_id          TEXT    NOT NULL,
    target_provider_id TEXT    NOT NULL,
    target_account     TEXT    NOT NULL,
    target_region      TEXT    NOT NULL,
    target_name        TEXT    NOT NULL,
    outcome            TEXT    NOT NULL,
    reason             TEXT    NOT NULL,
    old_value          TEXT,            -- JSON
    new_value          TEXT,            -- JSON
    prev_hash          TEXT    NOT NULL,
    hash               TEXT    NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (time, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_actor_id ON audit_log (actor_id, seq);
CREATE INDEX audit_log_target ON audit_log (target_kind, target_id, seq);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- One row per requested action, written before the provider call.
CREATE TABLE actions (
    id                  INTEGER PRIMARY KEY,
    kind                TEXT    NOT NULL,  -- start | stop | reboot | terminate | set_owner
    resource_id         BIGINT  NOT NULL,
    account             TEXT    NOT NULL,
    region              TEXT    NOT NULL,
    resource_kind       TEXT    NOT NULL,
    provider_id         TEXT    NOT NULL,
    resource_name       TEXT    NOT NULL,
    requested_by        BIGINT,
    requested_by_name   TEXT    NOT NULL,
    on_behalf_of        TEXT    NOT NULL,
    params              TEXT    NOT NULL,  -- JSON
    idempotency_key     TEXT    NOT NULL UNIQUE,
    state               TEXT    NOT NULL,  -- pending | running | succeeded | failed
    provider_request_id TEXT    NOT NULL,
    error_code          TEXT    NOT NULL,
    error               TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    started_at          BIGINT,
    finished_at         BIGINT
);
CREATE INDEX actions_resource ON actions (resource_id, id);
CREATE INDEX actions_requested_by ON actions (requested_by, id);
CREATE INDEX actions_unsettled ON actions (id) WHERE state IN ('pending', 'running');

-- API idempotency: the first response to (user, Idempotency-Key), kept with
-- a digest of the request so a different body under the same key is refused.
CREATE TABLE idempotency_keys (
    user_id      BIGINT  NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       BIGINT,             -- NULL while the first request runs
    response     TEXT,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
