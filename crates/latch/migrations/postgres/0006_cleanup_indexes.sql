-- Indexes for cleanup (`latch cleanup sql` and the janitor), so each batch finds its rows
-- without scanning the whole table.
-- Keep index names identical to migrations/sqlite/0006_cleanup_indexes.sql (a test checks).
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX selfservice_codes_expires_idx ON selfservice_codes (expires_at);
CREATE INDEX selfservice_errors_created_idx ON selfservice_errors (created_at);
CREATE INDEX selfservice_code_failures_created_idx ON selfservice_code_failures (created_at);
CREATE INDEX courier_messages_sent_idx ON courier_messages (status, updated_at);
