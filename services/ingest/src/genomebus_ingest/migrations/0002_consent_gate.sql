-- Consent gates the pipeline: ingest keeps the latest consent version it has seen per patient
-- (from consent.changed events), and a sample waits in 'awaiting_consent' until a written
-- analysis consent is known; a sample of a patient who has withdrawn is quarantined.
CREATE TABLE consents (
    patient_pseudonym      text        PRIMARY KEY,
    version                integer     NOT NULL,
    analysis_consent_given boolean     NOT NULL,
    withdrawn              boolean     NOT NULL,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE samples DROP CONSTRAINT samples_status_check;
ALTER TABLE samples ADD CONSTRAINT samples_status_check CHECK (
    status IN ('awaiting_reads', 'awaiting_consent', 'received', 'rejected', 'quarantined')
);
ALTER TABLE samples ADD COLUMN consent_version integer;
CREATE INDEX samples_awaiting_consent ON samples (patient_pseudonym) WHERE status = 'awaiting_consent';
