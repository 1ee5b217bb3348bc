-- The national variant registry.
--
-- Consent is enforced here, in the database, not in application code: research queries read only
-- the research_* views, which join every genotype to the CURRENT consent projection, so a
-- withdrawal is in force for every query whose snapshot starts after it committed. A patient with
-- no consent on record matches none of the views (default deny).

-- One row per patient ever seen, holding the latest consent version applied. A row whose version
-- is NULL is a placeholder: the loader creates it so that it always has a row to lock (a load and
-- a consent change of the same patient serialise on this row, see loader.py).
CREATE TABLE consents (
    patient_pseudonym      text        PRIMARY KEY,
    version                integer     CHECK (version >= 1),
    analysis_consent_given boolean,
    research_use           text        CHECK (research_use IN ('allowed', 'own_treatment_only')),
    withdrawn              boolean,
    event_id               uuid,
    changed_at             timestamptz,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((version IS NULL) = (research_use IS NULL)
       AND (version IS NULL) = (withdrawn IS NULL)
       AND (version IS NULL) = (analysis_consent_given IS NULL))
);

-- Distinct normalised variants (one ALT each), keyed by a stable digest of
-- {reference digest, chrom, pos, ref, alt}: the same allele gets the same id in any database.
CREATE TABLE variants (
    variant_id       text    PRIMARY KEY,
    reference_digest text    NOT NULL,
    chrom            text    NOT NULL,
    pos              integer NOT NULL CHECK (pos >= 1),
    ref              text    NOT NULL,
    alt              text    NOT NULL
);
-- Region queries and allele lookups go by locus.
CREATE INDEX variants_locus ON variants (chrom, pos);

-- One row per sample ever received: its provenance, or why it was quarantined.
CREATE TABLE samples (
    sample_id         text        PRIMARY KEY,
    patient_pseudonym text        NOT NULL,
    hospital_id       text,
    reference_id      text        NOT NULL,
    reference_digest  text        NOT NULL,
    tools             jsonb       NOT NULL,
    vcf               jsonb       NOT NULL,
    vcf_sha256        text        NOT NULL,
    bam_sha256        text        NOT NULL,
    source_event_id   uuid        NOT NULL,
    correlation_id    text        NOT NULL,
    loaded_at         timestamptz NOT NULL DEFAULT now(),
    consent_version   integer,    -- the consent version in force when the load committed
    quarantined       boolean     NOT NULL DEFAULT false,
    quarantine_reason text,
    variants_loaded   integer     NOT NULL DEFAULT 0,
    genotypes_loaded  integer     NOT NULL DEFAULT 0,
    CHECK (quarantined = (quarantine_reason IS NOT NULL))
);
CREATE INDEX samples_patient ON samples (patient_pseudonym);

-- Per-sample genotypes. Foreign keys are left out on purpose: a 10M-row load would pay a
-- per-row trigger for each; the loader writes samples, variants and genotypes in one transaction
-- from one staging table, so the references hold by construction.
-- The primary key leads with sample_id: one load appends one contiguous key range (and answers
-- the treating hospital's per-patient view); the variant index serves research queries, with the
-- allele count included so counting carriers needs no heap visit.
CREATE TABLE genotypes (
    sample_id  text     NOT NULL,
    variant_id text     NOT NULL,
    alt_count  smallint NOT NULL CHECK (alt_count IN (1, 2)),
    dp         integer,
    gq         integer,
    PRIMARY KEY (sample_id, variant_id)
);
CREATE INDEX genotypes_variant ON genotypes (variant_id) INCLUDE (alt_count);

-- Samples whose data may be used for research now: consent allows research, analysis consent is
-- given and not withdrawn, and the sample is not quarantined. Unknown consent matches nothing.
CREATE VIEW research_samples AS
SELECT s.sample_id, s.patient_pseudonym, s.reference_digest
FROM samples s
JOIN consents c ON c.patient_pseudonym = s.patient_pseudonym
WHERE NOT s.quarantined
  AND c.research_use = 'allowed'
  AND c.analysis_consent_given IS TRUE
  AND c.withdrawn IS FALSE;

CREATE VIEW research_genotypes AS
SELECT g.variant_id, g.sample_id, g.alt_count, r.patient_pseudonym, r.reference_digest
FROM genotypes g
JOIN research_samples r ON r.sample_id = g.sample_id;

-- Samples usable for the patient's own treatment: research use may be restricted, but analysis
-- consent must be given and not withdrawn.
CREATE VIEW treatment_samples AS
SELECT s.sample_id, s.patient_pseudonym, s.hospital_id, s.reference_id, s.reference_digest,
       s.loaded_at
FROM samples s
JOIN consents c ON c.patient_pseudonym = s.patient_pseudonym
WHERE NOT s.quarantined
  AND c.analysis_consent_given IS TRUE
  AND c.withdrawn IS FALSE;

CREATE VIEW treatment_genotypes AS
SELECT t.patient_pseudonym, g.sample_id, v.variant_id, v.reference_digest, v.chrom, v.pos,
       v.ref, v.alt, g.alt_count, g.dp, g.gq
FROM genotypes g
JOIN treatment_samples t ON t.sample_id = g.sample_id
JOIN variants v ON v.variant_id = g.variant_id;

-- Who did what, when, why, and which (pseudonymous) patients it touched. Append-only: the
-- triggers below refuse UPDATE, DELETE and TRUNCATE for every role, the owner included.
CREATE TABLE audit_log (
    id       bigserial   PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor    text        NOT NULL,
    role     text        NOT NULL,
    action   text        NOT NULL,
    purpose  text        NOT NULL,
    outcome  text        NOT NULL,
    patients text[]      NOT NULL DEFAULT '{}',
    details  jsonb       NOT NULL DEFAULT '{}'
);
-- "Who has looked at my data?" is answered by patient.
CREATE INDEX audit_log_patients ON audit_log USING gin (patients);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
