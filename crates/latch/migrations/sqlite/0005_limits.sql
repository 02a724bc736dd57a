-- Attempt budgets and rate-limit counters shared by every Latch node, plus single-use markers
-- (e.g. an answered WebAuthn challenge). Times are epoch milliseconds so the arithmetic is
-- portable. Keep identical to migrations/postgres/0005_limits.sql (a test checks).
CREATE TABLE latch_limits (
    key TEXT PRIMARY KEY NOT NULL,
    hits BIGINT NOT NULL,
    delay_ms BIGINT NOT NULL,
    reset_at BIGINT NOT NULL
);
CREATE INDEX latch_limits_reset_idx ON latch_limits (reset_at);
