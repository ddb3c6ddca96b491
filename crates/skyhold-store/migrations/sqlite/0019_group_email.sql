-- A group's address for notifications about what it owns (and its
-- members without one of their own). SQLite dialect; keep in step with
-- migrations/postgres.
ALTER TABLE groups ADD COLUMN email TEXT NOT NULL DEFAULT '';
