-- One row per message to send: recorded (with its rendered content) in the same transaction as
-- the consumer's inbox entry, so an event leads to exactly one notification; a delivery worker
-- then sends it, retrying transient failures.
CREATE TABLE notifications (
    id              uuid        PRIMARY KEY,       -- also the Message-ID, so a re-send can be recognised
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    event           jsonb       NOT NULL,          -- the envelope, for the dead letter if delivery fails for good
    user_id         uuid,                          -- whose notification (none for operators' alerts)
    channel         text        NOT NULL,          -- 'email'
    recipient       text        NOT NULL,
    template        text        NOT NULL,
    subject         text        NOT NULL,
    body_text       text        NOT NULL,
    body_html       text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);

CREATE UNIQUE INDEX notifications_event ON notifications (event_id, template);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_user ON notifications (user_id, id DESC);

-- Every delivery attempt and how it went.
CREATE TABLE delivery_attempts (
    id              uuid        PRIMARY KEY,
    notification_id uuid        NOT NULL REFERENCES notifications (id),
    attempt         integer     NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('sent', 'transient_failure', 'permanent_failure')),
    error           text,
    at              timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX delivery_attempts_notification ON delivery_attempts (notification_id, attempt);
