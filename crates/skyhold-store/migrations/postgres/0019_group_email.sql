-- A group's address for notifications about what it owns (and its
-- members without one of their own). PostgreSQL dialect; keep in step with
-- migrations/sqlite.
ALTER TABLE groups ADD COLUMN email TEXT COLLATE "C" NOT NULL DEFAULT '';
