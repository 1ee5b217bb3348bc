-- The trace a row belongs to (W3C traceparent and tracestate, as a text-map carrier): the relay
-- publishes the row inside that trace, so a sample's trace survives the outbox.
ALTER TABLE genomebus_outbox ADD COLUMN trace_context jsonb;
-- Rows set aside as failed are counted for the metrics without scanning every published row.
CREATE INDEX genomebus_outbox_failed ON genomebus_outbox (id)
    WHERE published_at IS NULL AND failed_at IS NOT NULL;
