-- Each sample carries "may be used for research now" (samples.research), kept by the same
-- consent trigger that moves the counts, in the consent change's transaction, and set from the
-- consents row when the sample is inserted. research_samples then filters one table instead of
-- joining every sample to its patient's consent: a research answer costs what the same answer
-- without consent costs, and a withdrawal is still in force the moment it commits.
ALTER TABLE samples ADD COLUMN research boolean NOT NULL DEFAULT false;
UPDATE samples s
   SET research = registry_research_ok(c.research_use, c.analysis_consent_given, c.withdrawn)
  FROM consents c
 WHERE c.patient_pseudonym = s.patient_pseudonym;

CREATE FUNCTION registry_samples_research() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.research := coalesce((
        SELECT registry_research_ok(c.research_use, c.analysis_consent_given, c.withdrawn)
        FROM consents c WHERE c.patient_pseudonym = NEW.patient_pseudonym), false);
    RETURN NEW;
END
$$;
CREATE TRIGGER samples_research
    BEFORE INSERT OR UPDATE OF patient_pseudonym, research ON samples
    FOR EACH ROW EXECUTE FUNCTION registry_samples_research();

-- 0004's consent trigger, now also flipping the patient's samples' flag.
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
    -- The flag trigger above recomputes the flag from the consents row (now NEW).
    UPDATE samples SET research = v_now WHERE patient_pseudonym = NEW.patient_pseudonym;
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

-- Emptying the consents leaves no sample usable for research.
CREATE OR REPLACE FUNCTION registry_recount_all_cohorts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'consents' THEN
        UPDATE samples SET research = false WHERE research;
    END IF;
    DELETE FROM cohorts;
    PERFORM registry_recount_cohort(r.reference_digest)
    FROM (SELECT DISTINCT reference_digest FROM samples) r;
    RETURN NULL;
END
$$;

CREATE OR REPLACE VIEW research_samples AS
SELECT s.sample_id, s.sample_no, s.patient_pseudonym, s.reference_digest
FROM samples s
WHERE s.research
  AND NOT s.quarantined
  AND s.removed_at IS NULL;
