-- How far each stage is with a sample's scattered work ({"alignment": {"done": 2, "total": 3,
-- "unit_kind": "read_chunk"}, ...}), from stage.progress events: what the hospital sees while a
-- whole genome takes hours.
ALTER TABLE samples ADD COLUMN progress jsonb;
