-- Cohort sizes kept per reference, like the per-variant counts: the allele number of every
-- research answer is 2 x the research-consenting patients with an active sample on the
-- reference. Counting them per question cost a join of samples and consents each time (and grows
-- with the registry); now a trigger recounts the reference's row whenever a sample arrives, is
-- quarantined or removed, and whenever a consent change moves a patient in or out of research,
-- in that same transaction.
CREATE TABLE cohorts (
    reference_digest  text    PRIMARY KEY,
    patients          integer NOT NULL CHECK (patients >= 0),  -- every active sample's patient
    research_patients integer NOT NULL CHECK (research_patients >= 0)
);

-- Recount one reference's row from the samples and consents. Callers hold
-- registry_lock_counts(), so recounts never race each other: each sees every earlier one.
CREATE FUNCTION registry_recount_cohort(p_reference text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO cohorts (reference_digest, patients, research_patients)
    SELECT p_reference,
           count(DISTINCT s.patient_pseudonym),
           count(DISTINCT s.patient_pseudonym) FILTER (
               WHERE registry_research_ok(c.research_use, c.analysis_consent_given, c.withdrawn))
    FROM samples s LEFT JOIN consents c ON c.patient_pseudonym = s.patient_pseudonym
    WHERE s.reference_digest = p_reference AND NOT s.quarantined AND s.removed_at IS NULL
    ON CONFLICT (reference_digest) DO UPDATE SET
        patients = EXCLUDED.patients, research_patients = EXCLUDED.research_patients
$$;

CREATE FUNCTION registry_samples_recount_cohort() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM registry_lock_counts();
    PERFORM registry_recount_cohort(NEW.reference_digest);
    IF TG_OP = 'UPDATE' AND OLD.reference_digest <> NEW.reference_digest THEN
        PERFORM registry_recount_cohort(OLD.reference_digest);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER samples_recount_cohort
    AFTER INSERT OR UPDATE OF quarantined, removed_at, reference_digest, patient_pseudonym
    ON samples FOR EACH ROW EXECUTE FUNCTION registry_samples_recount_cohort();

-- The consent trigger of 0003, now also recounting the cohorts of the patient's references.
CREATE OR REPLACE FUNCTION registry_consent_recount() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_was boolean := TG_OP = 'UPDATE'
        AND registry_research_ok(OLD.research_use, OLD.analysis_consent_given, OLD.withdrawn);
    v_now boolean := registry_research_ok(NEW.research_use, NEW.analysis_consent_given, NEW.withdrawn);
    v_delta integer;
    v_reference text;
BEGIN
    IF v_was = v_now THEN
        RETURN NULL;
    END IF;
    v_delta := CASE WHEN v_now THEN 1 ELSE -1 END;
    PERFORM registry_lock_counts();
    UPDATE variants v SET
        research_carriers     = v.research_carriers     + v_delta,
        research_allele_count = v.research_allele_count + v_delta * c.alt_count
    FROM (
        SELECT g.variant_no, max(g.alt_count) AS alt_count
        FROM samples s JOIN genotypes g ON g.sample_no = s.sample_no
        WHERE s.patient_pseudonym = NEW.patient_pseudonym
          AND NOT s.quarantined AND s.removed_at IS NULL
        GROUP BY g.variant_no
    ) c
    WHERE v.variant_no = c.variant_no;
    FOR v_reference IN
        SELECT DISTINCT reference_digest FROM samples WHERE patient_pseudonym = NEW.patient_pseudonym
    LOOP
        PERFORM registry_recount_cohort(v_reference);
    END LOOP;
    RETURN NULL;
END
$$;

-- Emptying the samples or the consents (tests, a rebuild) empties or recounts the cohorts too.
CREATE FUNCTION registry_recount_all_cohorts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM cohorts;
    PERFORM registry_recount_cohort(r.reference_digest)
    FROM (SELECT DISTINCT reference_digest FROM samples) r;
    RETURN NULL;
END
$$;
CREATE TRIGGER samples_truncate_cohorts AFTER TRUNCATE ON samples
    FOR EACH STATEMENT EXECUTE FUNCTION registry_recount_all_cohorts();
CREATE TRIGGER consents_truncate_cohorts AFTER TRUNCATE ON consents
    FOR EACH STATEMENT EXECUTE FUNCTION registry_recount_all_cohorts();

SELECT registry_recount_cohort(r.reference_digest)
FROM (SELECT DISTINCT reference_digest FROM samples) r;

-- A variant's carriers, for the "patients touched" of an allele lookup. 0003 went without it
-- (one primary-key probe per research sample instead), but that is ~3 us per sample on every
-- lookup: 2 ms at 500 samples, growing with the registry. The index costs a random insert per
-- genotype on each load; the benchmark prints both figures.
CREATE INDEX genotypes_variant ON genotypes (variant_no, sample_no);
