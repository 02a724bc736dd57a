-- Identities, their credentials, credential identifiers and addresses.
-- Keep table and column names identical to migrations/sqlite/0001_identities.sql (a test checks).
CREATE TABLE identities (
    id UUID PRIMARY KEY NOT NULL,
    schema_id TEXT NOT NULL,
    traits JSONB NOT NULL,
    state TEXT NOT NULL,
    state_changed_at TIMESTAMPTZ NULL,
    metadata_public JSONB NULL,
    metadata_admin JSONB NULL,
    external_id TEXT NULL,
    organization_id UUID NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX identities_external_id_uq ON identities (external_id);

CREATE TABLE identity_credentials (
    id UUID PRIMARY KEY NOT NULL,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    config JSONB NOT NULL,
    version INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX identity_credentials_type_uq ON identity_credentials (identity_id, type);

CREATE TABLE identity_credential_identifiers (
    id UUID PRIMARY KEY NOT NULL,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    credential_id UUID NOT NULL REFERENCES identity_credentials (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    identifier TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX identity_credential_identifiers_uq ON identity_credential_identifiers (type, identifier);
CREATE INDEX identity_credential_identifiers_identity_idx ON identity_credential_identifiers (identity_id);
CREATE INDEX identity_credential_identifiers_credential_idx ON identity_credential_identifiers (credential_id);

CREATE TABLE identity_verifiable_addresses (
    id UUID PRIMARY KEY NOT NULL,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    value TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    verified_at TIMESTAMPTZ NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX identity_verifiable_addresses_uq ON identity_verifiable_addresses (via, value);
CREATE INDEX identity_verifiable_addresses_identity_idx ON identity_verifiable_addresses (identity_id);

CREATE TABLE identity_recovery_addresses (
    id UUID PRIMARY KEY NOT NULL,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX identity_recovery_addresses_uq ON identity_recovery_addresses (via, value);
CREATE INDEX identity_recovery_addresses_identity_idx ON identity_recovery_addresses (identity_id);
