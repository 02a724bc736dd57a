-- Native apps' social sign-in hand-off (`return_session_token_exchange_code`): the flow's init
-- code, the return_to code and the session token they unlock. Codes are stored as SHA-256
-- hashes; the token is sealed with a key derived from both codes, so the row alone reveals
-- nothing. Keep identical to migrations/postgres/0009_session_token_exchanges.sql (a test checks).
CREATE TABLE session_token_exchanges (
    id BLOB PRIMARY KEY NOT NULL,
    flow_id BLOB NOT NULL,
    init_code_hash TEXT NOT NULL UNIQUE,
    return_to_code_hash TEXT NULL,
    session_id BLOB NULL REFERENCES sessions (id) ON DELETE CASCADE,
    sealed_token TEXT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX session_token_exchanges_flow_idx ON session_token_exchanges (flow_id);
CREATE INDEX session_token_exchanges_expires_idx ON session_token_exchanges (expires_at);
