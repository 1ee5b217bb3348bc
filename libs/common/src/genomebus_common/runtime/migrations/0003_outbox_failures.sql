-- A row Kafka refuses for good (too large, not authorised) must not block every later event:
-- the relay marks it failed with the reason and goes on; an operator republishes or drops it.
ALTER TABLE genomebus_outbox ADD COLUMN failed_at timestamptz;
ALTER TABLE genomebus_outbox ADD COLUMN last_error text;
DROP INDEX genomebus_outbox_unsent;
CREATE INDEX genomebus_outbox_unsent ON genomebus_outbox (id) WHERE published_at IS NULL AND failed_at IS NULL;
