-- Sessions, their devices, self-service flows and stored browser errors.
-- Keep table and column names identical to migrations/sqlite/0002_sessions_flows.sql (a test checks).
CREATE TABLE sessions (
    id UUID PRIMARY KEY NOT NULL,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    logout_token_hash TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    aal TEXT NOT NULL,
    authentication_methods JSONB NOT NULL,
    authenticated_at TIMESTAMPTZ NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX sessions_token_hash_uq ON sessions (token_hash);
CREATE UNIQUE INDEX sessions_logout_token_hash_uq ON sessions (logout_token_hash);
CREATE INDEX sessions_identity_idx ON sessions (identity_id, created_at);

CREATE TABLE session_devices (
    id UUID PRIMARY KEY NOT NULL,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    ip_address TEXT NULL,
    user_agent TEXT NULL,
    location TEXT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX session_devices_session_idx ON session_devices (session_id);

CREATE TABLE selfservice_flows (
    id UUID PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    type TEXT NOT NULL,
    state TEXT NOT NULL,
    request_url TEXT NOT NULL,
    return_to TEXT NULL,
    csrf_hash TEXT NULL,
    active TEXT NULL,
    ui JSONB NOT NULL,
    internal JSONB NOT NULL,
    identity_id UUID NULL REFERENCES identities (id) ON DELETE CASCADE,
    session_id UUID NULL REFERENCES sessions (id) ON DELETE CASCADE,
    refresh BOOLEAN NOT NULL,
    requested_aal TEXT NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX selfservice_flows_expires_idx ON selfservice_flows (expires_at);

CREATE TABLE selfservice_errors (
    id UUID PRIMARY KEY NOT NULL,
    error JSONB NOT NULL,
    seen_at TIMESTAMPTZ NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
