-- Research answers name the patients whose genotypes they counted (the audit). A region page
-- finds them by position: with an index on (contig_no, pos) that is one range scan per
-- partition over the genotypes inside the page, instead of one probe per research sample
-- (9 ms at 500 samples, and growing with every sample). An allele lookup finds its carriers
-- through the same index (position, then variant). It replaces the index on (variant_no,
-- sample_no), which only the allele lookup used, so loads maintain no more indexes than before.
--
-- On a populated registry, build it per partition with CREATE INDEX CONCURRENTLY and attach
-- each to the parent index (ALTER INDEX ... ATTACH PARTITION) before this runs: then this
-- statement only finds them. Here, in one step, it locks genotypes against writes while it builds.
CREATE INDEX IF NOT EXISTS genotypes_locus ON genotypes (contig_no, pos, variant_no, sample_no);
DROP INDEX IF EXISTS genotypes_variant;
