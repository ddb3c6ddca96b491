-- The usage ledger. SQLite dialect; keep in step with migrations/postgres.

-- Intervals of each resource's billable state: what it was billed for
-- (product, type, quantity: GiB, nodes or 1), whose it was, and when, with
-- how each end was found. A row is written when the interval opens and
-- once more when it closes (ended_at set from NULL); never after that.
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY,
    resource_id BIGINT  NOT NULL,
    account     TEXT    NOT NULL,
    region      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    provider_id TEXT    NOT NULL,
    product     TEXT    NOT NULL,   -- instance-hour | volume-gib-month | ...
    rtype       TEXT    NOT NULL,   -- instance type, class, node type, volume type, '' 
    quantity    BIGINT  NOT NULL,
    owner       TEXT    NOT NULL,
    grp         TEXT    NOT NULL,   -- the owning group ('' for a user's)
    blueprint   TEXT    NOT NULL,
    started_at  BIGINT  NOT NULL,
    start_how   TEXT    NOT NULL,   -- observed | transition_time | action
    ended_at    BIGINT,             -- NULL while open
    end_how     TEXT    NOT NULL DEFAULT '',  -- observed | transition_time | last_seen | action
    recorded_at BIGINT  NOT NULL
);
-- At most one open interval per resource.
CREATE UNIQUE INDEX ledger_open ON ledger (resource_id) WHERE ended_at IS NULL;
CREATE INDEX ledger_open_scope ON ledger (account, region, kind) WHERE ended_at IS NULL;
CREATE INDEX ledger_resource ON ledger (resource_id, started_at);
CREATE INDEX ledger_started ON ledger (started_at);
CREATE INDEX ledger_ended ON ledger (ended_at);

-- Per listing scope, the time of the last listing the ledger reconciled:
-- what a resource missing from the next one was last seen at.
CREATE TABLE ledger_scopes (
    account     TEXT   NOT NULL,
    region      TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (account, region, kind)
);
