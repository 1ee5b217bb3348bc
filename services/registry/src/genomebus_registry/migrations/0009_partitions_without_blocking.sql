-- Making a genotypes partition must not stop the registry. CREATE TABLE ... PARTITION OF takes
-- an ACCESS EXCLUSIVE lock on the parent: it waits for every open load, and every query,
-- consent change and removal then queues behind it. A table made on its own and then attached
-- takes only SHARE UPDATE EXCLUSIVE on the parent, which readers and writers do not conflict
-- with; its CHECK constraint lets ATTACH skip the scan. The next block is made ahead too, so
-- loads rarely wait for one at all.
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
        EXECUTE format('CREATE TABLE %I (LIKE genotypes INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       v_name);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (sample_no >= %s AND sample_no < %s)',
                       v_name, v_name || '_range', v_block * 64, (v_block + 1) * 64);
        EXECUTE format('ALTER TABLE genotypes ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                       v_name, v_block * 64, (v_block + 1) * 64);
        v_made := v_made OR v_block = p_sample_no / 64;
    END LOOP;
    RETURN v_made;
END
$$;
