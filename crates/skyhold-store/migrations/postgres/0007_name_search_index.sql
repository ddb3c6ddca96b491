-- Plain free-text searches walk live rows in name order and test each
-- row's search text until the page is full. With `search` included in the
-- name indexes the walk is an index-only scan: a row that does not match
-- costs an index entry, not a heap fetch (measured on 100,000 resources:
-- `payments` across all kinds 9 -> 1.7 ms, within instances 2 -> 0.7 ms;
-- docs/PERFORMANCE.md).
--
-- B-tree entries must stay under 2,704 bytes, so skyhold now cuts `search`
-- to 1,500 bytes (SEARCH_TEXT_MAX_BYTES). Rows written before that are cut
-- here first, conservatively by characters (375 characters are at most
-- 1,500 bytes); the next sync that changes such a row rewrites it.
UPDATE resources SET search = left(search, 375) WHERE octet_length(search) > 1500;
CREATE INDEX resources_live_name_search ON resources (kind, name, id) INCLUDE (search) WHERE deleted_at IS NULL;
DROP INDEX resources_live_name;
CREATE INDEX resources_live_any_name_search ON resources (name, id) INCLUDE (search) WHERE deleted_at IS NULL;
DROP INDEX resources_live_any_name;
