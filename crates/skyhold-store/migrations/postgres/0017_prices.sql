-- Prices imported from AWS price list offer files (`skyhold prices
-- import`). PostgreSQL dialect; keep in step with migrations/sqlite.
CREATE TABLE prices (
    product     TEXT COLLATE "C" NOT NULL,   -- instance-hour | volume-gib-month | ...
    region      TEXT COLLATE "C" NOT NULL,
    rtype       TEXT COLLATE "C" NOT NULL,
    usd         DOUBLE PRECISION NOT NULL,
    source      TEXT COLLATE "C" NOT NULL,   -- the file it came from
    imported_at BIGINT  NOT NULL,
    PRIMARY KEY (product, region, rtype)
);
