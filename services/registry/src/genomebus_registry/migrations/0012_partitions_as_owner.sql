-- The registry runs as a runtime role that may not create tables (docs/security.md), but a load
-- must still be able to make the genotypes partition its sample falls in. The function that
-- makes it now runs with its owner's rights (SECURITY DEFINER, like a setuid program): it can
-- only ever make and attach genotypes_b<N> for the block of the number it is given. Its
-- search_path is fixed so a caller's temporary objects can never stand in for genotypes, and
-- only roles granted EXECUTE (the runtime role, by the migrate step) may call it.
-- The body is 0011's, unchanged.
CREATE OR REPLACE FUNCTION registry_ensure_genotypes_partition(p_sample_no integer) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION registry_ensure_genotypes_partition(integer) FROM PUBLIC;
