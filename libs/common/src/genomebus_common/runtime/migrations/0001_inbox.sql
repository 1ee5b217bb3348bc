-- The inbox: which events a consumer has already applied. A handler inserts its row in the same
-- transaction as its effect, so a redelivered event (after a crash between the database commit
-- and the Kafka offset commit) is recognised and has no second effect.
CREATE TABLE genomebus_inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
