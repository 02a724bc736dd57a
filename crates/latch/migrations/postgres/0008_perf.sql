-- The admin identity list filtered by credentials_identifier looks the identifier up without
-- its credential type; the unique index (type, identifier) cannot serve that, so it scanned
-- every identifier. Keep index names identical to migrations/sqlite/0008_perf.sql.
CREATE INDEX identity_credential_identifiers_identifier_idx ON identity_credential_identifiers (identifier);

-- Wake the courier worker of every node when mail is queued: each statement that inserts
-- into courier_messages sends one NOTIFY on channel latch_courier, delivered when its
-- transaction commits (and not at all on rollback). Workers LISTEN on it; without it, other
-- nodes only find new mail on their next poll (courier.worker.pull_wait).
CREATE FUNCTION latch_courier_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('latch_courier', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER courier_messages_wake AFTER INSERT ON courier_messages
    FOR EACH STATEMENT EXECUTE FUNCTION latch_courier_wake();
