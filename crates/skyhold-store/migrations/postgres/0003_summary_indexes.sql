-- The dashboard's grouped counts read only this covering index (no table
-- rows), and listings without a kind filter can walk names in order.
CREATE INDEX resources_live_summary ON resources (kind, state, account, region, rtype, size_gib) WHERE deleted_at IS NULL;
CREATE INDEX resources_live_any_name ON resources (name, id) WHERE deleted_at IS NULL;
