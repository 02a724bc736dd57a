-- The web hook outbox: `response.ignore: true` web hooks rendered when their event happens and
-- written in the event's own transaction, then delivered by a worker with retries. Keep table,
-- column and index names identical to migrations/postgres/0009_*.sql. (PostgreSQL also gets a
-- trigger that wakes every node's worker; a SQLite database belongs to one process, whose
-- worker is woken in memory.)
--
-- No secret of the hook's `auth` is stored: `auth_ref` is a SHA-256 fingerprint of the hook's
-- URL, method, id and auth type/name, which the worker matches against the configuration to
-- find the current credentials when it sends.
CREATE TABLE webhook_deliveries (
    id BLOB PRIMARY KEY NOT NULL,
    event TEXT NOT NULL,
    hook_id TEXT NULL,
    identity_id BLOB NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    headers TEXT NOT NULL,
    body TEXT NULL,
    auth_ref TEXT NULL,
    emit_analytics_event BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    claimed_until TEXT NULL,
    claim_id BLOB NULL,
    last_status INTEGER NULL,
    last_error TEXT NULL,
    delivered_at TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (created_at, id);
CREATE INDEX webhook_deliveries_status_list_idx ON webhook_deliveries (status, created_at, id);
