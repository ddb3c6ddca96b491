-- Self-service launch, first part: versioned blueprints, quotas (defaults
-- and overrides) and the reservations that make quota checks race-free.
-- SQLite dialect; keep in step with migrations/postgres.

-- A blueprint's identity; its content lives in versions (a launch records
-- the version it used, and editing never changes an old version).
CREATE TABLE blueprints (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    version     BIGINT  NOT NULL,  -- the current version
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    deleted_at  BIGINT             -- removed: hidden, its versions kept
);

CREATE TABLE blueprint_versions (
    blueprint_id BIGINT NOT NULL REFERENCES blueprints (id),
    version      BIGINT NOT NULL,
    spec         TEXT   NOT NULL,  -- JSON of skyhold_core::blueprint::BlueprintSpec
    created_by   BIGINT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (blueprint_id, version)
);

-- Limits per subject: `default:user`, `default:group`, `user:NAME`,
-- `group:NAME`. NULL is unlimited.
CREATE TABLE quotas (
    subject     TEXT    PRIMARY KEY,
    instances   BIGINT,
    vcpus       BIGINT,
    memory_gib  BIGINT,
    volume_gib  BIGINT,
    updated_by  BIGINT,
    updated_at  BIGINT  NOT NULL
);

-- Usage held by launches in flight, by owner (`ann` or `group:dev`, as the
-- owner tag says), until released when the launch settles or expired when
-- its process died.
CREATE TABLE quota_reservations (
    id          INTEGER PRIMARY KEY,
    owner       TEXT    NOT NULL,
    instances   BIGINT  NOT NULL,
    vcpus       BIGINT  NOT NULL,
    memory_mib  BIGINT  NOT NULL,
    volume_gib  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX quota_reservations_owner ON quota_reservations (LOWER(owner), expires_at);
