-- Change history: what each sync saw change, per resource. Account, region,
-- kind, provider id and name are copied so an event stays readable after its
-- resource row is gone; `changes` is a JSON list of {field, from, to}.
CREATE TABLE resource_events (
    id          INTEGER PRIMARY KEY,
    resource_id BIGINT,
    account     TEXT   NOT NULL,
    region      TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    provider_id TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    event       TEXT   NOT NULL,   -- appeared | changed | disappeared | reappeared
    changes     TEXT   NOT NULL
);
CREATE INDEX resource_events_at ON resource_events (at, id);
CREATE INDEX resource_events_resource ON resource_events (resource_id, id);
