-- resources_live_summary served the dashboard's grouped counts before
-- resource_summary kept them (0005); since then no query needs it, and at a
-- million resources it cost every insert and update an index entry and led
-- the planner to AND a bitmap of every row of a kind into counts (issue 11).
DROP INDEX resources_live_summary;
