-- The ledger rolled up by UTC day, so that a spend report over any range
-- of whole days reads about two rows per key however long the ledger is.
-- SQLite dialect; keep in step with migrations/postgres.

-- A key: whose, where and what (everything a report groups by or prices
-- by), with the quantity and number of its intervals open now and its
-- running totals (unit-milliseconds: quantity × ms; and plain ms), and the
-- first and last day it has rows for.
CREATE TABLE ledger_keys (
    id        INTEGER PRIMARY KEY,
    owner     TEXT   NOT NULL,
    grp       TEXT   NOT NULL,
    account   TEXT   NOT NULL,
    region    TEXT   NOT NULL,
    blueprint TEXT   NOT NULL,
    kind      TEXT   NOT NULL,
    product   TEXT   NOT NULL,
    rtype     TEXT   NOT NULL,
    open_q    BIGINT NOT NULL DEFAULT 0,
    open_n    BIGINT NOT NULL DEFAULT 0,
    cum_qms   BIGINT NOT NULL DEFAULT 0,
    cum_ms    BIGINT NOT NULL DEFAULT 0,
    first_day BIGINT,  -- its first and last day with a row (NULL: none)
    last_day  BIGINT,
    UNIQUE (account, region, kind, owner, grp, blueprint, product, rtype)
);

-- A key's usage on one UTC day (`day`: its midnight, ms) and its running
-- total through the end of that day. A day without a row had none.
CREATE TABLE ledger_days (
    key_id  BIGINT NOT NULL,
    day     BIGINT NOT NULL,
    qms     BIGINT NOT NULL,
    ms      BIGINT NOT NULL,
    cum_qms BIGINT NOT NULL,
    cum_ms  BIGINT NOT NULL,
    PRIMARY KEY (key_id, day)
) WITHOUT ROWID;
CREATE INDEX ledger_days_by_day ON ledger_days (day, key_id, qms, ms);

-- Per listing scope, the time up to which its open intervals are rolled
-- up (a report adds the rest, up to now, from the keys' open quantities).
CREATE TABLE ledger_rolled (
    account   TEXT   NOT NULL,
    region    TEXT   NOT NULL,
    kind      TEXT   NOT NULL,
    rolled_to BIGINT NOT NULL,
    PRIMARY KEY (account, region, kind)
);

-- One row once the rollup has been built from the intervals written
-- before it existed (at the first start after this migration).
CREATE TABLE ledger_rollup_built (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    built_at BIGINT NOT NULL
);
