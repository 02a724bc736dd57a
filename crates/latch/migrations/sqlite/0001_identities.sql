-- Identities, their credentials, credential identifiers and addresses.
-- Keep table and column names identical to migrations/postgres/0001_identities.sql (a test checks).
CREATE TABLE identities (
    id BLOB PRIMARY KEY NOT NULL,
    schema_id TEXT NOT NULL,
    traits TEXT NOT NULL,
    state TEXT NOT NULL,
    state_changed_at TEXT NULL,
    metadata_public TEXT NULL,
    metadata_admin TEXT NULL,
    external_id TEXT NULL,
    organization_id BLOB NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX identities_external_id_uq ON identities (external_id);

CREATE TABLE identity_credentials (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    config TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_credentials_type_uq ON identity_credentials (identity_id, type);

CREATE TABLE identity_credential_identifiers (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL REFERENCES identity_credentials (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    identifier TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_credential_identifiers_uq ON identity_credential_identifiers (type, identifier);
CREATE INDEX identity_credential_identifiers_identity_idx ON identity_credential_identifiers (identity_id);
CREATE INDEX identity_credential_identifiers_credential_idx ON identity_credential_identifiers (credential_id);

CREATE TABLE identity_verifiable_addresses (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    value TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    verified_at TEXT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_verifiable_addresses_uq ON identity_verifiable_addresses (via, value);
CREATE INDEX identity_verifiable_addresses_identity_idx ON identity_verifiable_addresses (identity_id);

CREATE TABLE identity_recovery_addresses (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_recovery_addresses_uq ON identity_recovery_addresses (via, value);
CREATE INDEX identity_recovery_addresses_identity_idx ON identity_recovery_addresses (identity_id);
