-- The admin identity list filtered by credentials_identifier looks the identifier up without
-- its credential type; the unique index (type, identifier) cannot serve that, so it scanned
-- every identifier. Keep index names identical to migrations/postgres/0008_perf.sql.
-- (PostgreSQL also gets a trigger that wakes every node's courier; a SQLite database belongs
-- to one process, whose worker is woken in memory.)
CREATE INDEX identity_credential_identifiers_identifier_idx ON identity_credential_identifiers (identifier);
