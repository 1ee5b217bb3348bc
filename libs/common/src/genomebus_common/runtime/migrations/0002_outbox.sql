-- The transactional outbox: an event to publish is written in the same transaction as the state
-- change that caused it; a relay publishes it afterwards and marks it sent. A crash between the
-- two leaves the row unsent, so it is published later: never lost, possibly twice (consumers
-- are idempotent on event_id).
CREATE TABLE genomebus_outbox (
    id           bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    topic        text        NOT NULL,
    key          bytea       NOT NULL,
    headers      jsonb       NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX genomebus_outbox_unsent ON genomebus_outbox (id) WHERE published_at IS NULL;
