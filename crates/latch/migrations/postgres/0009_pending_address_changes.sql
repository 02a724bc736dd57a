-- Address changes deferred by the `verify_new_address` settings hook until the new address is
-- verified (Kratos: identity_pending_traits_changes). At most one per identity; the row goes
-- away with its identity, the session that asked for it, or either flow.
-- Keep table and column names identical to migrations/sqlite/0009_pending_address_changes.sql (a test checks).
CREATE TABLE identity_pending_address_changes (
    id UUID PRIMARY KEY NOT NULL,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    settings_flow_id UUID NOT NULL REFERENCES selfservice_flows (id) ON DELETE CASCADE,
    verification_flow_id UUID NOT NULL REFERENCES selfservice_flows (id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    address TEXT NOT NULL,
    original_traits_hash TEXT NOT NULL,
    proposed_traits JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX identity_pending_address_changes_identity_uq ON identity_pending_address_changes (identity_id);
CREATE UNIQUE INDEX identity_pending_address_changes_verification_flow_uq ON identity_pending_address_changes (verification_flow_id);
CREATE INDEX identity_pending_address_changes_session_idx ON identity_pending_address_changes (session_id);
CREATE INDEX identity_pending_address_changes_settings_flow_idx ON identity_pending_address_changes (settings_flow_id);
