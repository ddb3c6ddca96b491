-- Money budgets. SQLite dialect; keep in step with migrations/postgres.

-- A monthly spend limit per user or group, with defaults
-- (default:user, default:group) and overrides (user:NAME, group:NAME),
-- like quotas: every budget that applies counts, the most restrictive wins.
CREATE TABLE budgets (
    subject     TEXT    PRIMARY KEY,      -- user:ann | group:dev | default:user | default:group
    monthly_usd DOUBLE PRECISION NOT NULL,
    on_exceed   TEXT    NOT NULL,         -- warn | block | stop
    updated_at  BIGINT  NOT NULL,
    updated_by  TEXT    NOT NULL
);
