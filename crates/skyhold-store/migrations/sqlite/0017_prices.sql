-- Prices imported from AWS price list offer files (`skyhold prices
-- import`). SQLite dialect; keep in step with migrations/postgres.
CREATE TABLE prices (
    product     TEXT    NOT NULL,   -- instance-hour | volume-gib-month | ...
    region      TEXT    NOT NULL,
    rtype       TEXT    NOT NULL,
    usd         DOUBLE PRECISION NOT NULL,
    source      TEXT    NOT NULL,   -- the file it came from
    imported_at BIGINT  NOT NULL,
    PRIMARY KEY (product, region, rtype)
);
