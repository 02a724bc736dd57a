-- The web hook outbox: `response.ignore: true` web hooks rendered when their event happens and
-- written in the event's own transaction, then delivered by a worker on every node with
-- retries. Keep table, column and index names identical to migrations/sqlite/0009_*.sql.
--
-- No secret of the hook's `auth` is stored: `auth_ref` is a SHA-256 fingerprint of the hook's
-- URL, method, id and auth type/name, which the worker matches against the configuration to
-- find the current credentials when it sends.
CREATE TABLE webhook_deliveries (
    id UUID PRIMARY KEY NOT NULL,
    event TEXT NOT NULL,
    hook_id TEXT NULL,
    identity_id UUID NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    headers JSONB NOT NULL,
    body TEXT NULL,
    auth_ref TEXT NULL,
    emit_analytics_event BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until TIMESTAMPTZ NULL,
    claim_id UUID NULL,
    last_status INTEGER NULL,
    last_error TEXT NULL,
    delivered_at TIMESTAMPTZ NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (created_at, id);
CREATE INDEX webhook_deliveries_status_list_idx ON webhook_deliveries (status, created_at, id);

-- Wake the web hook worker of every node when a delivery is queued (as 0008 does for mail):
-- one NOTIFY per inserting statement on channel latch_webhooks, sent at commit.
CREATE FUNCTION latch_webhooks_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('latch_webhooks', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER webhook_deliveries_wake AFTER INSERT ON webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION latch_webhooks_wake();
