-- Genotypes partitioned by blocks of 64 consecutive samples.
--
-- Why: genotypes are written a sample at a time but the carriers index (0004) is ordered by
-- variant, so every load inserts at ~20,000 random places; over one 10M-row table that index is
-- ~300 MB and each load dirtied most of it (loads fell from ~60k to ~37k rows/s with it). Split by
-- sample block, a load only touches the newest block's indexes (~40 MB each), which stay in
-- memory; an allele lookup descends one small index per block instead of one large one.
--
-- Partitions are made ahead of the loads that need them (registry_ensure_genotypes_partition,
-- called in its own short transaction before a load begins: creating a partition locks the
-- parent table, which must not be held for a whole load).

DROP VIEW genotype_rows;
DROP VIEW treatment_genotypes;
DROP VIEW research_genotypes;

ALTER TABLE genotypes RENAME TO genotypes_0006;
ALTER INDEX genotypes_pkey RENAME TO genotypes_0006_pkey;
ALTER INDEX genotypes_variant RENAME TO genotypes_0006_variant;

CREATE TABLE genotypes (
    variant_no bigint   NOT NULL,
    sample_no  integer  NOT NULL,
    contig_no  integer  NOT NULL,
    pos        integer  NOT NULL,
    dp         integer,
    gq         integer,
    alt_count  smallint NOT NULL CHECK (alt_count IN (1, 2)),
    PRIMARY KEY (sample_no, contig_no, pos, variant_no)
) PARTITION BY RANGE (sample_no);
CREATE INDEX genotypes_variant ON genotypes (variant_no, sample_no);

-- The partition holding p_sample_no, made if missing; true if it was made now.
CREATE FUNCTION registry_ensure_genotypes_partition(p_sample_no integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_block integer := p_sample_no / 64;
    v_name text := format('genotypes_b%s', v_block);
BEGIN
    IF to_regclass(v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(7165074649430303009);  -- two loaders may race to make it
    IF to_regclass(v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF genotypes FOR VALUES FROM (%s) TO (%s)',
                   v_name, v_block * 64, (v_block + 1) * 64);
    RETURN true;
END
$$;

SELECT registry_ensure_genotypes_partition(b * 64)
FROM (SELECT DISTINCT sample_no / 64 AS b FROM genotypes_0006) blocks;
INSERT INTO genotypes SELECT variant_no, sample_no, contig_no, pos, dp, gq, alt_count FROM genotypes_0006;
DROP TABLE genotypes_0006;

CREATE VIEW research_genotypes AS
SELECT v.variant_id, g.variant_no, r.sample_id, g.sample_no, g.alt_count, r.patient_pseudonym,
       r.reference_digest
FROM genotypes g
JOIN research_samples r ON r.sample_no = g.sample_no
JOIN variants v ON v.variant_no = g.variant_no;

CREATE VIEW treatment_genotypes AS
SELECT t.patient_pseudonym, t.sample_id, v.variant_id, v.reference_digest, v.chrom, v.pos,
       v.ref, v.alt, g.alt_count, g.dp, g.gq
FROM genotypes g
JOIN treatment_samples t ON t.sample_no = g.sample_no
JOIN variants v ON v.variant_no = g.variant_no;

CREATE VIEW genotype_rows AS
SELECT s.sample_id, v.variant_id, g.alt_count, g.dp, g.gq
FROM genotypes g
JOIN samples s ON s.sample_no = g.sample_no
JOIN variants v ON v.variant_no = g.variant_no;
