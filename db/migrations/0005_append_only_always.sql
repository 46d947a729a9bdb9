-- The append-only triggers fire in every session, including one with session_replication_role = replica (which
-- otherwise skips ordinary triggers): only the table owner can switch them off, and the application role owns
-- nothing (see APPLICATION_PRIVILEGES in db/migrate.ts).
ALTER TABLE audit.events ENABLE ALWAYS TRIGGER events_no_update_delete;
ALTER TABLE audit.events ENABLE ALWAYS TRIGGER events_no_truncate;
ALTER TABLE notify.pack_approval_transitions ENABLE ALWAYS TRIGGER pack_approval_transitions_no_update;
