-- The transactional outbox: events written in the same transaction as the state change they
-- describe, published to JetStream afterwards by a relay.
CREATE TABLE event_outbox (
    id           uuid        PRIMARY KEY,          -- the event id (UUID v7) and Nats-Msg-Id
    subject      text        NOT NULL,             -- NATS subject to publish on
    payload      jsonb       NOT NULL,             -- the whole envelope
    traceparent  text,                             -- W3C trace context of the emitting span
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,                      -- NULL until JetStream acknowledged it
    lease_until  timestamptz,                      -- a relay holds the row until then
    attempts     integer     NOT NULL DEFAULT 0,   -- publish attempts so far
    last_error   text                              -- why the last attempt failed
);

-- The relay's work queue: pending rows in id (= time) order.
CREATE INDEX event_outbox_pending ON event_outbox (id) WHERE published_at IS NULL;
-- Purging published rows after their retention.
CREATE INDEX event_outbox_published ON event_outbox (published_at) WHERE published_at IS NOT NULL;

-- The inbox of an idempotent consumer: the ids of events it has processed, written in the same
-- transaction as the handler's effects, so an event is processed at most once per consumer.
CREATE TABLE event_inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE INDEX event_inbox_processed_at ON event_inbox (processed_at);
