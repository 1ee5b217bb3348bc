-- A hospital may withdraw a sample: it is marked removed (kept as a record, without reads) and
-- a sample.removed event tells every other store to delete its data.
ALTER TABLE samples DROP CONSTRAINT samples_status_check;
ALTER TABLE samples ADD CONSTRAINT samples_status_check CHECK (
    status IN ('awaiting_reads', 'awaiting_consent', 'received', 'rejected', 'quarantined', 'removed')
);
