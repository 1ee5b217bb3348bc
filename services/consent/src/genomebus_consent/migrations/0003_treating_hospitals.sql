-- Who treats whom: a hospital that registered a sample of a patient (ingest's
-- sample.registered events) may record and read that patient's consent. Rows are only added.
CREATE TABLE treating_hospitals (
    patient_pseudonym text        NOT NULL CHECK (patient_pseudonym ~ '^pk[0-9]{1,4}_[0-9a-f]{64}$'),
    hospital_id       text        NOT NULL,
    first_sample_id   text        NOT NULL,
    since             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_pseudonym, hospital_id)
);
