-- Policy reconcilers and the notification outbox. SQLite dialect; keep in
-- step with migrations/postgres.

-- One row per policy pass: when, by whom, what it found and did, and (for
-- a pass held by the mass-action cap) the plan waiting for confirmation.
CREATE TABLE policy_runs (
    id           INTEGER PRIMARY KEY,
    policy       TEXT    NOT NULL,            -- expiry
    mode         TEXT    NOT NULL,            -- enforce | dry-run (the global mode)
    cause        TEXT    NOT NULL,            -- timer | demand | confirm
    requested_by TEXT    NOT NULL,            -- a user name, or system:policy
    holder       TEXT    NOT NULL,            -- the replica that ran it
    state        TEXT    NOT NULL,            -- running | done | held | confirmed | failed
    started_at   BIGINT  NOT NULL,
    ended_at     BIGINT,
    counts       TEXT    NOT NULL,            -- JSON: candidates, warned, stopped, ...
    plan         TEXT    NOT NULL,            -- JSON: the decisions (held: those waiting)
    note         TEXT    NOT NULL,
    confirms     BIGINT,                      -- the held run this run carries out
    confirmed_by TEXT    NOT NULL DEFAULT '',
    confirmed_at BIGINT
);
CREATE INDEX policy_runs_policy ON policy_runs (policy, state, id);

-- What a policy did (or decided not to do) for one step of one resource's
-- ladder: the unique key is the idempotency key's (policy, resource,
-- step, deadline), so no step is taken twice by reruns or replicas.
CREATE TABLE policy_steps (
    id          INTEGER PRIMARY KEY,
    policy      TEXT    NOT NULL,
    resource_id BIGINT  NOT NULL,
    step        TEXT    NOT NULL,             -- warn:<ms> | stop | terminate
    due_at      BIGINT  NOT NULL,
    run_id      BIGINT  NOT NULL,
    state       TEXT    NOT NULL,             -- sent | acting | done | failed | skipped
    attempts    BIGINT  NOT NULL,
    action_id   BIGINT,
    reason      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (policy, resource_id, step, due_at)
);
CREATE INDEX policy_steps_resource ON policy_steps (resource_id, id);

-- The outbox: a notification is written in the transaction of the
-- decision it reports, with one delivery per channel, sent by a worker.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    dedupe_key  TEXT    NOT NULL UNIQUE,      -- one per warning point, stop, alert
    kind        TEXT    NOT NULL,             -- expiry.warning | expiry.stopped | policy.held | ...
    recipient   TEXT    NOT NULL,             -- user:ann | group:dev | admins
    email       TEXT    NOT NULL,             -- where mail goes ('' when none is known)
    subject     TEXT    NOT NULL,
    body        TEXT    NOT NULL,             -- JSON: the payload webhooks get
    resource_id BIGINT,
    created_at  BIGINT  NOT NULL
);
CREATE TABLE notification_deliveries (
    id              INTEGER PRIMARY KEY,
    notification_id BIGINT  NOT NULL,
    channel         TEXT    NOT NULL,         -- email | webhook:<n>
    state           TEXT    NOT NULL,         -- pending | sending | sent | dead
    attempts        BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    last_error      TEXT    NOT NULL,
    sent_at         BIGINT,
    UNIQUE (notification_id, channel)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt_at);
