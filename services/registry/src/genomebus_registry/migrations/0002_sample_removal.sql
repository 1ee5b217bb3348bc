-- A removed sample keeps its provenance row (marked removed) but loses its genotypes; the
-- views leave it out, so cohort sizes and counts follow at once.
ALTER TABLE samples ADD COLUMN removed_at timestamptz;
ALTER TABLE samples ADD COLUMN removal_reason text;

CREATE OR REPLACE VIEW research_samples AS
SELECT s.sample_id, s.patient_pseudonym, s.reference_digest
FROM samples s
JOIN consents c ON c.patient_pseudonym = s.patient_pseudonym
WHERE NOT s.quarantined
  AND s.removed_at IS NULL
  AND c.research_use = 'allowed'
  AND c.analysis_consent_given IS TRUE
  AND c.withdrawn IS FALSE;

CREATE OR REPLACE VIEW treatment_samples AS
SELECT s.sample_id, s.patient_pseudonym, s.hospital_id, s.reference_id, s.reference_digest,
       s.loaded_at
FROM samples s
JOIN consents c ON c.patient_pseudonym = s.patient_pseudonym
WHERE NOT s.quarantined
  AND s.removed_at IS NULL
  AND c.analysis_consent_given IS TRUE
  AND c.withdrawn IS FALSE;
