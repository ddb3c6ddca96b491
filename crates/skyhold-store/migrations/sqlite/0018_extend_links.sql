-- Single-use links in expiry warnings that extend the resource (the
-- token is stored as its SHA-256 only). SQLite dialect; keep in step with
-- migrations/postgres.
CREATE TABLE extend_links (
    token_hash  TEXT    PRIMARY KEY,
    resource_id BIGINT  NOT NULL,
    extend_ms   BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    used_by     TEXT    NOT NULL DEFAULT ''
);
