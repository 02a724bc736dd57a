-- One-time codes (login, registration, verification, recovery) and failed attempts.
-- Keep table and column names identical to migrations/postgres/0004_codes.sql (a test checks).
CREATE TABLE selfservice_codes (
    id BLOB PRIMARY KEY NOT NULL,
    flow_id BLOB NOT NULL REFERENCES selfservice_flows (id) ON DELETE CASCADE,
    identity_id BLOB NULL REFERENCES identities (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    address TEXT NOT NULL,
    address_type TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX selfservice_codes_flow_idx ON selfservice_codes (flow_id);

CREATE TABLE selfservice_code_failures (
    id BLOB PRIMARY KEY NOT NULL,
    flow_id BLOB NULL,
    address TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX selfservice_code_failures_address_idx ON selfservice_code_failures (address, created_at);
CREATE INDEX selfservice_code_failures_flow_idx ON selfservice_code_failures (flow_id);
