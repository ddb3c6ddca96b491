-- The sync engine's shared schedule and leases (SQLite dialect; keep in step
-- with migrations/postgres). A job is one (account, region, kind).

-- The schedule lives with the status: when the job is next due, who ran it
-- last, what class of error it ended with, and how many attempts in a row
-- were throttled (for the backoff).
ALTER TABLE sync_status ADD COLUMN next_due BIGINT;
ALTER TABLE sync_status ADD COLUMN holder TEXT;
ALTER TABLE sync_status ADD COLUMN error_kind TEXT;
ALTER TABLE sync_status ADD COLUMN throttled_in_row BIGINT NOT NULL DEFAULT 0;

-- One lease per job while a replica runs it. Taken with one atomic upsert
-- that only succeeds when the row is absent, expired or already ours;
-- renewed while the job runs, deleted when it ends.
CREATE TABLE sync_leases (
    account     TEXT   NOT NULL,
    region      TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    holder      TEXT   NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (account, region, kind)
);

-- A log of job runs (who, from when to when), kept a few days: it shows
-- which replica did what, and lets tests prove no job ran twice at once.
CREATE TABLE sync_runs (
    id         INTEGER PRIMARY KEY,
    account    TEXT   NOT NULL,
    region     TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    holder     TEXT   NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at   BIGINT,
    outcome    TEXT
);
CREATE INDEX sync_runs_job ON sync_runs (account, region, kind, started_at);
CREATE INDEX sync_runs_started ON sync_runs (started_at);
