-- Every read and write of a patient's consent, allowed or refused, by whom and for what: the
-- patient reads it through the citizens' portal (GET /v1/patients/{pseudonym}/access-log).
-- Append-only like consent_versions: a log that can be edited tells nothing.
CREATE TABLE consent_access_log (
    id                bigserial   PRIMARY KEY,
    patient_pseudonym text        NOT NULL CHECK (patient_pseudonym ~ '^pk[0-9]{1,4}_[0-9a-f]{64}$'),
    client_id         text        NOT NULL,
    client_kind       text        NOT NULL CHECK (client_kind IN ('hospital', 'portal')),
    action            text        NOT NULL CHECK (action IN ('record', 'read_history', 'read_access_log')),
    outcome           text        NOT NULL CHECK (outcome IN ('allowed', 'refused')),
    purpose           text        NOT NULL,
    at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_access_log_patient ON consent_access_log (patient_pseudonym, at);

CREATE FUNCTION consent_access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_access_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER consent_access_log_no_update_delete
    BEFORE UPDATE OR DELETE ON consent_access_log
    FOR EACH ROW EXECUTE FUNCTION consent_access_log_append_only();

CREATE TRIGGER consent_access_log_no_truncate
    BEFORE TRUNCATE ON consent_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION consent_access_log_append_only();
