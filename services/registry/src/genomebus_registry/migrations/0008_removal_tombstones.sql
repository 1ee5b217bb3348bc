-- A hospital may remove a sample before its variants reach the registry (sample.removed and
-- variants.called travel on different topics, so their order is not guaranteed). A tombstone
-- per removed sample lets a load that arrives afterwards refuse, instead of loading the
-- genotypes of a sample that no longer exists.
CREATE TABLE removed_samples (
    sample_id          text        PRIMARY KEY,
    patient_pseudonym  text        NOT NULL,
    reason             text        NOT NULL,
    removed_at         timestamptz NOT NULL DEFAULT now()
);
INSERT INTO removed_samples (sample_id, patient_pseudonym, reason, removed_at)
SELECT sample_id, patient_pseudonym, coalesce(removal_reason, 'removed'), removed_at
FROM samples WHERE removed_at IS NOT NULL
ON CONFLICT DO NOTHING;
