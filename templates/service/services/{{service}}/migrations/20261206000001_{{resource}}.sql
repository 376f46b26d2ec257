-- The {{service}} service's {{resource}}: each a customer's, created over the API or recorded
-- from an event it consumes (then `source_event` is that event's id: one {{record}} per event,
-- however often it is delivered).
CREATE TABLE "{{resource}}" (
    id           uuid        PRIMARY KEY,
    user_id  uuid        NOT NULL,
    reference    text        NOT NULL CHECK (length(reference) BETWEEN 1 AND 200),
    cause        text,
    source_event uuid        UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX "{{resource}}_customer" ON "{{resource}}" (user_id, id DESC);
