-- Payment methods: what the provider gave back for a card. The card number itself never
-- reaches this database: only the provider's token, the brand, the last four digits and the
-- expiry.
CREATE TABLE payment_methods (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL,
    provider_token text        NOT NULL,
    brand          text        NOT NULL,
    last4          text        NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    exp_month      smallint    NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year       smallint    NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz                      -- removed by the user; kept for the payments made with it
);

CREATE UNIQUE INDEX payment_methods_provider_token_key ON payment_methods (provider_token);
CREATE INDEX payment_methods_user ON payment_methods (user_id, created_at) WHERE deleted_at IS NULL;

-- Charges, one per order: the order id is the idempotency key, and the unique index is what
-- makes two concurrent charges for one order capture once.
CREATE TABLE payments (
    id                 uuid        PRIMARY KEY,
    order_id           uuid        NOT NULL,
    user_id            uuid        NOT NULL,
    payment_method_id  uuid        NOT NULL REFERENCES payment_methods (id),
    amount_minor       bigint      NOT NULL CHECK (amount_minor > 0),
    currency           text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status             text        NOT NULL CHECK (status IN ('pending', 'captured', 'failed')),
    provider_reference text,
    failure_reason     text,
    failure_message    text,
    refunded_minor     bigint      NOT NULL DEFAULT 0,
    lease_until        timestamptz,                  -- a worker is talking to the provider until then
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (refunded_minor BETWEEN 0 AND amount_minor),
    CHECK (status = 'captured' OR refunded_minor = 0)
);

CREATE UNIQUE INDEX payments_order_id_key ON payments (order_id);
CREATE INDEX payments_user ON payments (user_id, created_at DESC, id DESC);

-- Refunds. The idempotency key makes a repeated refund request return the first refund.
CREATE TABLE refunds (
    id                 uuid        PRIMARY KEY,
    payment_id         uuid        NOT NULL REFERENCES payments (id),
    idempotency_key    text        NOT NULL,
    amount_minor       bigint      NOT NULL CHECK (amount_minor > 0),
    currency           text        NOT NULL,
    provider_reference text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX refunds_idempotency_key ON refunds (payment_id, idempotency_key);
CREATE INDEX refunds_payment ON refunds (payment_id);

-- The built-in test provider's own books, standing in for a card processor's systems: the
-- cards it tokenised (by behaviour, never by number) and every charge and refund it made,
-- keyed by the idempotency key the service sends, as a real processor keeps them.
CREATE TABLE test_provider_cards (
    token      text        PRIMARY KEY,
    behaviour  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE test_provider_charges (
    idempotency_key text        PRIMARY KEY,
    token           text        NOT NULL,
    amount_minor    bigint      NOT NULL,
    currency        text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 1,
    outcome         text,                           -- NULL until final: captured | declined
    reference       text,
    decline_reason  text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE test_provider_refunds (
    idempotency_key text        PRIMARY KEY,
    charge_reference text       NOT NULL,
    amount_minor    bigint      NOT NULL,
    reference       text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
