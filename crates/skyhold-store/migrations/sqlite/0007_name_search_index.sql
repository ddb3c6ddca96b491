-- Searches across every kind walk live rows in name order and test each
-- row's search text with LIKE until the page is full. With the text in the
-- index the walk reads index pages only and looks up just the rows that
-- match (SQLite defers the table seek until a column outside the index is
-- needed), instead of one table lookup per row it passes.
CREATE INDEX resources_live_any_name_search ON resources (name, id, search) WHERE deleted_at IS NULL;
DROP INDEX resources_live_any_name;
