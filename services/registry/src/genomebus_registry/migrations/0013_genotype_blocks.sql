-- Whole genomes: genotypes as per-sample blocks, counts as stored + pending adjustments.
--
-- Why: a whole genome is ~4.5 million calls. One row each made a genome a ~90 s load and the
-- national database (60,000 genomes) ~270 billion rows; and every load, removal and consent
-- change moved the per-variant counts itself, under one lock shared by every patient, so a
-- withdrawal waited behind a whole-genome load. Now:
-- * a sample's genotypes are one row per contig x bin of 262,144 bp (~12,000 rows a genome):
--   sorted int4 calls (offset in bin << 13 | allele code << 2 | alt count) and their depth and
--   quality (core/keys.py says why the numbers are what they are);
-- * a variant is a bigint key (contig_no << 43 | pos << 11 | allele code): a region is one key
--   range. Codes 1-12 are the SNVs (snv_codes), other alleles get codes from 16 up
--   (variant_alleles); the public variant id is computed from the allele, as before, never
--   stored;
-- * a research count is variant_counts (stored) + pending_adjustments (signed entries naming
--   the samples whose blocks make up a patient's contribution), read in one snapshot. Loads,
--   removals and consent changes only insert entries (each in its own short transaction, no
--   lock shared between patients); a fold (registry_fold) moves a batch into the stored counts.
--   core/counts.py states the rules; registry_recount() is the brute-force check.

DROP VIEW genotype_rows;
DROP VIEW treatment_genotypes;
DROP VIEW research_genotypes;
DROP TRIGGER consents_recount ON consents;
DROP TRIGGER samples_recount_cohort ON samples;
DROP TRIGGER samples_truncate_cohorts ON samples;
DROP TRIGGER consents_truncate_cohorts ON consents;
DROP FUNCTION registry_consent_recount();
DROP FUNCTION registry_samples_recount_cohort();
DROP FUNCTION registry_recount_all_cohorts();
DROP FUNCTION registry_recount_cohort(text);
DROP FUNCTION registry_count_sample(integer, text, integer);
DROP FUNCTION registry_recount_all();

-- The twelve single-base substitutions, with their fixed codes (core/keys.py SNVS).
CREATE TABLE snv_codes (
    code smallint PRIMARY KEY CHECK (code BETWEEN 1 AND 12),
    ref  text     NOT NULL,
    alt  text     NOT NULL,
    UNIQUE (ref, alt)
);
INSERT INTO snv_codes (code, ref, alt)
SELECT row_number() OVER (ORDER BY r.i, a.i), r.b, a.b
FROM unnest('{A,C,G,T}'::text[]) WITH ORDINALITY AS r (b, i)
CROSS JOIN unnest('{A,C,G,T}'::text[]) WITH ORDINALITY AS a (b, i)
WHERE r.b <> a.b;

-- Every other allele, coded per position in the order the registry first met it. Written by
-- the load that first meets it, under registry_lock_alleles (held to the load's commit), so two
-- loads never number two alleles alike.
CREATE TABLE variant_alleles (
    contig_no integer  NOT NULL,
    pos       integer  NOT NULL CHECK (pos >= 1),
    code      smallint NOT NULL CHECK (code BETWEEN 16 AND 2047),
    ref       text     NOT NULL,
    alt       text     NOT NULL,
    PRIMARY KEY (contig_no, pos, code),
    UNIQUE (contig_no, pos, ref, alt)
);

CREATE FUNCTION registry_lock_alleles() RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(8243108395577799290)
$$;

-- A contig's number is 20 bits of a variant key. Loads used to draw a number for every contig of
-- every VCF (an INSERT that conflicts still draws one), so number the contigs densely again
-- (the old genotypes and variants follow) and hold new ones to 20 bits.
CREATE TEMP TABLE contig_renumbering ON COMMIT DROP AS
SELECT contig_no AS old, row_number() OVER (ORDER BY contig_no)::integer AS new FROM contigs;
UPDATE contigs SET contig_no = -contig_no;
UPDATE contigs k SET contig_no = r.new FROM contig_renumbering r WHERE k.contig_no = -r.old;
UPDATE variants v SET contig_no = r.new FROM contig_renumbering r WHERE v.contig_no = r.old;
DO $$
BEGIN
    EXECUTE format('ALTER TABLE contigs ALTER COLUMN contig_no RESTART WITH %s',
                   (SELECT coalesce(max(contig_no), 0) + 1 FROM contigs));
END
$$;
ALTER TABLE contigs ADD CONSTRAINT contigs_contig_no_fits_a_key CHECK (contig_no BETWEEN 0 AND 1048575);

-- A variant's key, from a block's contig, bin and call (core/keys.py key_of_call).
CREATE FUNCTION registry_key(p_contig_no integer, p_bin integer, p_call integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (p_contig_no::bigint << 43) | (p_bin::bigint << 29) | (p_call >> 2)::bigint
$$;

-- A call's position and allele code (core/keys.py).
CREATE FUNCTION registry_call_pos(p_bin integer, p_call integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (p_bin << 18) | (p_call >> 13)
$$;
CREATE FUNCTION registry_call_code(p_call integer) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((p_call >> 2) & 2047)::smallint
$$;

-- A depth or genotype quality in one byte (a "char", -128..127, holding 0..255 less 128):
-- 0-253 as themselves, 254 for "254 or more: the value is in deep_calls", 255 for "not given"
-- (core/keys.py small_qual). One byte, not a smallint: a genome's depths are 4.5 MB instead of
-- 9, and these arrays hardly compress.
CREATE FUNCTION registry_small(p_value integer) RETURNS "char"
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((CASE WHEN p_value IS NULL THEN 255 ELSE least(greatest(p_value, 0), 254) END) - 128)::"char"
$$;
CREATE FUNCTION registry_unsmall(p_stored "char", p_deep integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_stored::integer + 128 WHEN 255 THEN NULL WHEN 254 THEN p_deep
                ELSE p_stored::integer + 128 END
$$;

-- One row per sample x contig x bin: the calls, and each call's depth and genotype quality at
-- the same index, a byte each. A row is ~2.4 kB (~390 calls a bin), over the ~2 kB from which
-- PostgreSQL compresses (lz4) its values and moves some to the row's TOAST: a genotype takes
-- ~6.3 bytes on disk (docs/registry-scale.md). The key leads with the sample: a load
-- appends one key range, a patient's view and a removal read one.
CREATE TABLE genotype_blocks (
    sample_no integer   NOT NULL,
    contig_no integer   NOT NULL,
    bin       integer   NOT NULL CHECK (bin >= 0),
    calls     integer[] NOT NULL,
    dp        "char"[]  NOT NULL,
    gq        "char"[]  NOT NULL,
    PRIMARY KEY (sample_no, contig_no, bin),
    CHECK (cardinality(calls) = cardinality(dp) AND cardinality(calls) = cardinality(gq))
);
-- The calls stay in the row (MAIN: never moved out while the row fits a page), so the block
-- probes of every research answer read no TOAST; the depths (read only by the clinical view)
-- move out when the row is over ~2 kB.
ALTER TABLE genotype_blocks ALTER COLUMN calls SET STORAGE MAIN;
ALTER TABLE genotype_blocks ALTER COLUMN calls SET COMPRESSION lz4;
ALTER TABLE genotype_blocks ALTER COLUMN dp SET COMPRESSION lz4;
ALTER TABLE genotype_blocks ALTER COLUMN gq SET COMPRESSION lz4;

-- The true depth and quality of the few calls whose byte says "254 or more" (repeats, copy
-- number gains): a few hundred of a genome's 4.5 million.
CREATE TABLE deep_calls (
    sample_no integer NOT NULL,
    contig_no integer NOT NULL,
    bin       integer NOT NULL,
    call      integer NOT NULL,
    dp        integer,
    gq        integer,
    PRIMARY KEY (sample_no, contig_no, bin, call)
);

-- Stored counts per variant. Written by folds only (one at a time), so no load or consent
-- change ever waits on them. fillfactor leaves room for the fold's updates to stay HOT. No CHECK
-- (count >= 0): the fold's upsert carries signed deltas, and PostgreSQL checks a row's
-- constraints before it finds the conflict that turns the insert into an update. A stored count
-- never goes below zero all the same (see registry_fold; the property test checks it).
CREATE TABLE variant_counts (
    key          bigint  PRIMARY KEY,
    all_het      integer NOT NULL DEFAULT 0,
    all_hom      integer NOT NULL DEFAULT 0,
    research_het integer NOT NULL DEFAULT 0,
    research_hom integer NOT NULL DEFAULT 0
) WITH (fillfactor = 90);

-- What is not folded yet: each entry adds (weights +1) or takes away (-1) the contribution of
-- one patient on one reference, i.e. every variant of its samples' blocks with its largest
-- allele count, to the unrestricted (w_all) and research (w_research) counts and cohort sizes.
CREATE TABLE pending_adjustments (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_pseudonym text        NOT NULL,
    reference_digest  text        NOT NULL,
    samples           integer[]   NOT NULL CHECK (cardinality(samples) > 0),
    w_all             smallint    NOT NULL CHECK (w_all BETWEEN -1 AND 1),
    w_research        smallint    NOT NULL CHECK (w_research BETWEEN -1 AND 1),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (w_all <> 0 OR w_research <> 0)
);
CREATE INDEX pending_adjustments_reference ON pending_adjustments (reference_digest);

-- A removed sample's blocks stay until no entry names them (the fold deletes them then).
ALTER TABLE samples ADD COLUMN purged_at timestamptz;
CREATE INDEX samples_to_purge ON samples (sample_no) WHERE removed_at IS NOT NULL AND purged_at IS NULL;

-- Cohort sizes (the cohorts table) are now stored by folds only, plus the entries' weights;
-- their CHECKs go for the reason variant_counts has none.
ALTER TABLE cohorts DROP CONSTRAINT cohorts_patients_check;
ALTER TABLE cohorts DROP CONSTRAINT cohorts_research_patients_check;

-- Every call of every block, decoded (the views below and the checks read this).
CREATE VIEW genotype_calls AS
SELECT b.sample_no, b.contig_no, registry_call_pos(b.bin, c.call) AS pos,
       registry_call_code(c.call) AS code, (c.call & 3)::smallint AS alt_count,
       registry_key(b.contig_no, b.bin, c.call) AS key
FROM genotype_blocks b CROSS JOIN LATERAL unnest(b.calls) AS c (call);

-- The genotypes research may use now (consent-filtered, as research_samples).
CREATE VIEW research_genotypes AS
SELECT r.patient_pseudonym, r.sample_id, r.reference_digest, g.key, g.alt_count
FROM research_samples r JOIN genotype_calls g ON g.sample_no = r.sample_no;

-- Genotypes as people and tests name them, with depth and quality (a removed sample's are gone
-- from it at once, and from the tables at the next fold).
CREATE VIEW genotype_rows AS
SELECT s.sample_id, k.reference_digest, k.chrom, registry_call_pos(b.bin, c.call) AS pos,
       coalesce(n.ref, a.ref) AS ref, coalesce(n.alt, a.alt) AS alt,
       (c.call & 3)::smallint AS alt_count,
       registry_unsmall(c.dp, d.dp) AS dp, registry_unsmall(c.gq, d.gq) AS gq
FROM genotype_blocks b
CROSS JOIN LATERAL unnest(b.calls, b.dp, b.gq) AS c (call, dp, gq)
JOIN samples s ON s.sample_no = b.sample_no
JOIN contigs k ON k.contig_no = b.contig_no
LEFT JOIN snv_codes n ON n.code = registry_call_code(c.call)
LEFT JOIN variant_alleles a ON n.code IS NULL AND a.contig_no = b.contig_no
    AND a.pos = registry_call_pos(b.bin, c.call) AND a.code = registry_call_code(c.call)
LEFT JOIN deep_calls d ON (c.dp::integer = 126 OR c.gq::integer = 126) AND d.sample_no = b.sample_no
    AND d.contig_no = b.contig_no AND d.bin = b.bin AND d.call = c.call
WHERE s.removed_at IS NULL;

-- The counts recomputed from the blocks of every active sample (brute force): the tests check
-- that stored + pending (registry_counts_now) always equals this, in one snapshot.
CREATE FUNCTION registry_recount()
RETURNS TABLE (key bigint, all_het integer, all_hom integer, research_het integer, research_hom integer)
LANGUAGE sql STABLE AS $$
    SELECT p.key,
           count(*) FILTER (WHERE p.alt_count = 1)::integer,
           count(*) FILTER (WHERE p.alt_count = 2)::integer,
           count(*) FILTER (WHERE p.alt_count = 1 AND p.research)::integer,
           count(*) FILTER (WHERE p.alt_count = 2 AND p.research)::integer
    FROM (
        SELECT g.key, s.patient_pseudonym, max(g.alt_count) AS alt_count, bool_or(s.research) AS research
        FROM genotype_calls g JOIN samples s ON s.sample_no = g.sample_no
        WHERE NOT s.quarantined AND s.removed_at IS NULL
        GROUP BY g.key, s.patient_pseudonym
    ) p
    GROUP BY p.key
$$;

CREATE FUNCTION registry_recount_cohorts()
RETURNS TABLE (reference_digest text, patients integer, research_patients integer)
LANGUAGE sql STABLE AS $$
    SELECT s.reference_digest, count(DISTINCT s.patient_pseudonym)::integer,
           (count(DISTINCT s.patient_pseudonym) FILTER (WHERE s.research))::integer
    FROM samples s WHERE NOT s.quarantined AND s.removed_at IS NULL
    GROUP BY s.reference_digest
    HAVING count(*) > 0
$$;

-- What the entries p_ids add: every variant of each entry's samples, with the entry's weights
-- and the variant's largest allele count among those samples (core/counts.py genotype).
CREATE FUNCTION registry_entry_calls(p_ids bigint[])
RETURNS TABLE (w_all integer, w_research integer, key bigint, alt_count integer)
LANGUAGE sql STABLE AS $$
    -- one sample: its calls as they are (a block holds a variant once)
    SELECT e.w_all, e.w_research, registry_key(b.contig_no, b.bin, c), c & 3
    FROM pending_adjustments e
    JOIN genotype_blocks b ON b.sample_no = e.samples[1]
    CROSS JOIN LATERAL unnest(b.calls) AS c
    WHERE e.id = ANY (p_ids) AND cardinality(e.samples) = 1
    UNION ALL
    -- several samples of one patient: each variant once, with its largest count
    SELECT e.w_all, e.w_research, x.key, x.alt_count
    FROM pending_adjustments e
    CROSS JOIN LATERAL (
        SELECT registry_key(b.contig_no, b.bin, c) AS key, max(c & 3) AS alt_count
        FROM genotype_blocks b CROSS JOIN LATERAL unnest(b.calls) AS c
        WHERE b.sample_no = ANY (e.samples)
        GROUP BY 1
    ) x
    WHERE e.id = ANY (p_ids) AND cardinality(e.samples) > 1
$$;

-- Every count as an answer sees it (stored + every pending entry), for checks and operators;
-- the research questions compute the same for the variants they ask about.
CREATE FUNCTION registry_counts_now()
RETURNS TABLE (key bigint, all_het integer, all_hom integer, research_het integer, research_hom integer)
LANGUAGE sql STABLE AS $$
    SELECT u.key, sum(u.all_het)::integer, sum(u.all_hom)::integer, sum(u.research_het)::integer,
           sum(u.research_hom)::integer
    FROM (
        SELECT v.key, v.all_het, v.all_hom, v.research_het, v.research_hom FROM variant_counts v
        UNION ALL
        SELECT d.key, d.w_all * (d.alt_count = 1)::integer, d.w_all * (d.alt_count = 2)::integer,
               d.w_research * (d.alt_count = 1)::integer, d.w_research * (d.alt_count = 2)::integer
        FROM registry_entry_calls(ARRAY(SELECT id FROM pending_adjustments)) d
    ) u
    GROUP BY u.key
    HAVING sum(u.all_het) <> 0 OR sum(u.all_hom) <> 0 OR sum(u.research_het) <> 0
        OR sum(u.research_hom) <> 0
$$;

CREATE FUNCTION registry_cohorts_now()
RETURNS TABLE (reference_digest text, patients integer, research_patients integer)
LANGUAGE sql STABLE AS $$
    SELECT u.reference_digest, sum(u.patients)::integer, sum(u.research_patients)::integer
    FROM (
        SELECT c.reference_digest, c.patients, c.research_patients FROM cohorts c
        UNION ALL
        SELECT e.reference_digest, e.w_all, e.w_research FROM pending_adjustments e
    ) u
    GROUP BY u.reference_digest
    HAVING sum(u.patients) <> 0 OR sum(u.research_patients) <> 0
$$;

-- Fold up to p_max_entries pending entries into the stored counts and cohorts, in
-- the caller's transaction, then delete the blocks of removed samples that no entry names any
-- more. One fold at a time (it waits for another to finish). Variants shared by the batch's
-- genomes are updated once, in key order. The entries are fixed by id in the first statement:
-- an entry committed while the fold runs is left for the next one. Entries of one patient
-- commit in id order (they serialise on the patient's consents row) and a fold takes them in id
-- order, so what a fold stores is always a prefix of each patient's changes, and no stored
-- count goes below zero.
-- Returns the number of entries folded.
CREATE FUNCTION registry_fold(p_max_entries integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(8243108395577799291);
    -- The entries of patients with a removed sample whose blocks wait for deletion first (all of
    -- such a patient's, in id order), then the oldest: a removal's genotypes go with the next
    -- fold, however many loads wait.
    v_ids := ARRAY(
        SELECT e.id FROM pending_adjustments e
        ORDER BY EXISTS (SELECT 1 FROM samples s WHERE s.patient_pseudonym = e.patient_pseudonym
                         AND s.removed_at IS NOT NULL AND s.purged_at IS NULL) DESC, e.id
        LIMIT p_max_entries);
    IF cardinality(v_ids) > 0 THEN
        INSERT INTO variant_counts AS v (key, all_het, all_hom, research_het, research_hom)
        SELECT d.key,
               coalesce(sum(d.w_all) FILTER (WHERE d.alt_count = 1), 0),
               coalesce(sum(d.w_all) FILTER (WHERE d.alt_count = 2), 0),
               coalesce(sum(d.w_research) FILTER (WHERE d.alt_count = 1), 0),
               coalesce(sum(d.w_research) FILTER (WHERE d.alt_count = 2), 0)
        FROM registry_entry_calls(v_ids) d
        GROUP BY d.key
        -- a patient's second sample takes away and adds back most of the first's variants
        HAVING coalesce(sum(d.w_all) FILTER (WHERE d.alt_count = 1), 0) <> 0
            OR coalesce(sum(d.w_all) FILTER (WHERE d.alt_count = 2), 0) <> 0
            OR coalesce(sum(d.w_research) FILTER (WHERE d.alt_count = 1), 0) <> 0
            OR coalesce(sum(d.w_research) FILTER (WHERE d.alt_count = 2), 0) <> 0
        ORDER BY d.key
        ON CONFLICT (key) DO UPDATE SET
            all_het      = v.all_het      + EXCLUDED.all_het,
            all_hom      = v.all_hom      + EXCLUDED.all_hom,
            research_het = v.research_het + EXCLUDED.research_het,
            research_hom = v.research_hom + EXCLUDED.research_hom;

        INSERT INTO cohorts AS c (reference_digest, patients, research_patients)
        SELECT reference_digest, sum(w_all), sum(w_research)
        FROM pending_adjustments WHERE id = ANY (v_ids) GROUP BY reference_digest
        ON CONFLICT (reference_digest) DO UPDATE SET
            patients = c.patients + EXCLUDED.patients,
            research_patients = c.research_patients + EXCLUDED.research_patients;

        DELETE FROM pending_adjustments WHERE id = ANY (v_ids);
    END IF;

    WITH purged AS (
        UPDATE samples s SET purged_at = now()
        WHERE s.removed_at IS NOT NULL AND s.purged_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM pending_adjustments e WHERE s.sample_no = ANY (e.samples))
        RETURNING s.sample_no
    )
    , blocks AS (
        DELETE FROM genotype_blocks b USING purged p WHERE b.sample_no = p.sample_no
    )
    DELETE FROM deep_calls d USING purged p WHERE d.sample_no = p.sample_no;
    RETURN cardinality(v_ids);
END
$$;

-- Existing data into the new layout: the alleles that are not SNVs get codes, each sample's
-- genotypes become its blocks, and every patient's contribution becomes a pending entry over
-- empty stored counts (answers are exact at once; the service's folder folds them).
INSERT INTO variant_alleles (contig_no, pos, code, ref, alt)
SELECT v.contig_no, v.pos, 15 + row_number() OVER (PARTITION BY v.contig_no, v.pos ORDER BY v.ref, v.alt),
       v.ref, v.alt
FROM variants v LEFT JOIN snv_codes s ON s.ref = v.ref AND s.alt = v.alt
WHERE s.code IS NULL;

INSERT INTO deep_calls (sample_no, contig_no, bin, call, dp, gq)
SELECT g.sample_no, v.contig_no, v.pos >> 18,
       ((v.pos & 262143) << 13) | (coalesce(s.code, a.code) << 2) | g.alt_count, g.dp, g.gq
FROM genotypes g
JOIN variants v ON v.variant_no = g.variant_no
LEFT JOIN snv_codes s ON s.ref = v.ref AND s.alt = v.alt
LEFT JOIN variant_alleles a ON a.contig_no = v.contig_no AND a.pos = v.pos AND a.ref = v.ref
                           AND a.alt = v.alt
WHERE g.dp >= 254 OR g.gq >= 254;

INSERT INTO genotype_blocks (sample_no, contig_no, bin, calls, dp, gq)
SELECT x.sample_no, x.contig_no, x.pos >> 18, array_agg(x.call ORDER BY x.call),
       array_agg(x.dp ORDER BY x.call), array_agg(x.gq ORDER BY x.call)
FROM (
    SELECT g.sample_no, v.contig_no, v.pos,
           ((v.pos & 262143) << 13) | (coalesce(s.code, a.code) << 2) | g.alt_count AS call,
           registry_small(g.dp) AS dp, registry_small(g.gq) AS gq
    FROM genotypes g
    JOIN variants v ON v.variant_no = g.variant_no
    LEFT JOIN snv_codes s ON s.ref = v.ref AND s.alt = v.alt
    LEFT JOIN variant_alleles a ON a.contig_no = v.contig_no AND a.pos = v.pos AND a.ref = v.ref
                               AND a.alt = v.alt
) x
GROUP BY x.sample_no, x.contig_no, x.pos >> 18;

-- Removed samples' genotypes were deleted at removal; nothing of them is left to purge.
UPDATE samples SET purged_at = removed_at WHERE removed_at IS NOT NULL;

DELETE FROM cohorts;
INSERT INTO pending_adjustments (patient_pseudonym, reference_digest, samples, w_all, w_research)
SELECT patient_pseudonym, reference_digest, array_agg(sample_no ORDER BY sample_no), 1,
       bool_or(research)::integer
FROM samples WHERE NOT quarantined AND removed_at IS NULL
GROUP BY patient_pseudonym, reference_digest;

DROP TABLE genotypes;
DROP TABLE variants;
DROP FUNCTION registry_ensure_genotypes_partition(integer);
DROP FUNCTION registry_lock_counts();
