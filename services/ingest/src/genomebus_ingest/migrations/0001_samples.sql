-- Ingest's own tables. National ids are never stored: only the pseudonym.
CREATE TABLE samples (
    sample_id         text        PRIMARY KEY,
    hospital_id       text        NOT NULL,
    specimen_id       text        NOT NULL,
    lis_order_id      text        NOT NULL,
    patient_pseudonym text        NOT NULL,
    priority          text        NOT NULL,
    fingerprint       text        NOT NULL,
    registration      jsonb       NOT NULL,
    status            text        NOT NULL CHECK (status IN ('awaiting_reads', 'received', 'rejected')),
    reasons           jsonb       NOT NULL DEFAULT '[]',
    reads_r1          jsonb,
    reads_r2          jsonb,
    read_pairs        bigint,
    event_id          uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (hospital_id, specimen_id)
);

-- Registrations refused before a sample existed (bad national id, unknown reference, ...):
-- recorded so a LIS operator and an auditor can see what was refused and why.
CREATE TABLE rejected_registrations (
    id          bigserial   PRIMARY KEY,
    hospital_id text        NOT NULL,
    specimen_id text,
    reasons     jsonb       NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
