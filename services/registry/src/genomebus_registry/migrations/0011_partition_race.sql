-- Two loads whose sample numbers need the same new block: the second waits on the advisory
-- lock while the first makes the table, and then its to_regclass() re-check still does not see
-- that table (the statement's catalog snapshot predates the first's commit). CREATE TABLE then
-- failed with duplicate_table, which dead-lettered the second sample's load. Now a table made
-- meanwhile by another loader counts as made.
CREATE OR REPLACE FUNCTION registry_ensure_genotypes_partition(p_sample_no integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_block integer;
    v_name text;
    v_made boolean := false;
BEGIN
    FOR v_block IN p_sample_no / 64 .. p_sample_no / 64 + 1 LOOP
        v_name := format('genotypes_b%s', v_block);
        CONTINUE WHEN to_regclass(v_name) IS NOT NULL;
        PERFORM pg_advisory_xact_lock(7165074649430303009);  -- two loaders may race to make it
        CONTINUE WHEN to_regclass(v_name) IS NOT NULL;
        BEGIN
            EXECUTE format('CREATE TABLE %I (LIKE genotypes INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                           v_name);
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (sample_no >= %s AND sample_no < %s)',
                           v_name, v_name || '_range', v_block * 64, (v_block + 1) * 64);
            EXECUTE format('ALTER TABLE genotypes ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                           v_name, v_block * 64, (v_block + 1) * 64);
            v_made := v_made OR v_block = p_sample_no / 64;
        EXCEPTION WHEN duplicate_table THEN
            NULL;  -- made and attached (in one transaction) by the loader we waited for
        END;
    END LOOP;
    RETURN v_made;
END
$$;
