-- Consent's own tables. National ids are never stored: only the pseudonym.
--
-- consent_versions is append-only: a patient's consent changes by a new version (1, 2, 3, ...),
-- never by editing or deleting an old one, so the history an auditor or the patient reads is the
-- history that was acted on. Triggers enforce it for every role that is not a superuser
-- disabling triggers on purpose.
CREATE TABLE consent_versions (
    id                     bigserial   PRIMARY KEY,
    patient_pseudonym      text        NOT NULL CHECK (patient_pseudonym ~ '^pk[0-9]{1,4}_[0-9a-f]{64}$'),
    version                integer     NOT NULL CHECK (version >= 1),
    analysis_consent_given boolean     NOT NULL,
    consent_document       text,
    consent_date           timestamptz,
    secondary_findings     text        CHECK (secondary_findings IN ('report', 'do_not_report')),
    research_use           text        NOT NULL CHECK (research_use IN ('allowed', 'own_treatment_only')),
    withdrawn              boolean     NOT NULL,
    recorded_by            text        NOT NULL,
    recorded_by_client     text        NOT NULL,
    reason                 text,
    source                 text        NOT NULL CHECK (source IN ('api', 'fhir')),
    event_id               uuid        NOT NULL UNIQUE,
    recorded_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (patient_pseudonym, version),
    -- A written analysis consent names its document and date (sundhedsloven § 29).
    CHECK (NOT analysis_consent_given OR withdrawn
           OR (consent_document IS NOT NULL AND consent_date IS NOT NULL)),
    CHECK (NOT (withdrawn AND analysis_consent_given))
);

CREATE FUNCTION consent_versions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_versions is append-only: % refused; record a new version instead', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER consent_versions_no_update_delete
    BEFORE UPDATE OR DELETE ON consent_versions
    FOR EACH ROW EXECUTE FUNCTION consent_versions_append_only();

CREATE TRIGGER consent_versions_no_truncate
    BEFORE TRUNCATE ON consent_versions
    FOR EACH STATEMENT EXECUTE FUNCTION consent_versions_append_only();

-- Versions are consecutive per patient: 1, then 2, ... The service assigns them under a lock;
-- this is the database's own guard should any writer forget to (the unique key catches races).
CREATE FUNCTION consent_versions_consecutive() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    expected integer;
BEGIN
    SELECT coalesce(max(version), 0) + 1 INTO expected
        FROM consent_versions WHERE patient_pseudonym = NEW.patient_pseudonym;
    IF NEW.version <> expected THEN
        RAISE EXCEPTION 'consent version % is not the next one (%) for this patient', NEW.version, expected
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER consent_versions_next_version
    BEFORE INSERT ON consent_versions
    FOR EACH ROW EXECUTE FUNCTION consent_versions_consecutive();

-- A client's Idempotency-Key and the version its first request created: a retried POST gets
-- that version back instead of a second one. The fingerprint (of pseudonym and facts, never the
-- national id) tells a true retry from a key reused for something else.
CREATE TABLE idempotency_keys (
    client_id         text        NOT NULL,
    idempotency_key   text        NOT NULL,
    fingerprint       text        NOT NULL,
    patient_pseudonym text        NOT NULL,
    version           integer     NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, idempotency_key),
    FOREIGN KEY (patient_pseudonym, version) REFERENCES consent_versions (patient_pseudonym, version)
);
