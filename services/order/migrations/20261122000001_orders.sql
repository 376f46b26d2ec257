-- Orders and the state of their checkout saga. The saga's state lives here, so a crash at any
-- point resumes where it stopped: a worker claims an order with a lease, performs its next step
-- (an idempotent call keyed by the order id), and records the outcome with the order.
CREATE TABLE orders (
    id                 uuid        PRIMARY KEY,
    user_id            uuid        NOT NULL,
    idempotency_key    text        NOT NULL,
    request_hash       bytea       NOT NULL,        -- what was asked with that key
    status             text        NOT NULL CHECK (status IN
                           ('PENDING', 'STOCK_RESERVED', 'PAID', 'CONFIRMED', 'CANCELLING', 'CANCELLED')),
    payment_method_id  uuid        NOT NULL,
    total_minor        bigint      NOT NULL CHECK (total_minor > 0),
    currency           text        NOT NULL,
    payment_id         uuid,
    refunded_minor     bigint      NOT NULL DEFAULT 0,
    cancel_reason      text,
    cancel_detail      text,
    -- Compensation still to do while CANCELLING.
    resolve_payment    boolean     NOT NULL DEFAULT false,  -- learn a charge's outcome (it timed out)
    refund_pending     boolean     NOT NULL DEFAULT false,  -- give the money back
    release_pending    boolean     NOT NULL DEFAULT false,  -- give the stock back
    -- The saga's work queue.
    step_attempts      integer     NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    lease_owner        uuid,
    lease_until        timestamptz,
    last_error         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX orders_idempotency_key ON orders (user_id, idempotency_key);
CREATE INDEX orders_user ON orders (user_id, id DESC);
CREATE INDEX orders_saga_due ON orders (next_attempt_at) WHERE status NOT IN ('CONFIRMED', 'CANCELLED');

CREATE TABLE order_items (
    order_id         uuid    NOT NULL REFERENCES orders (id),
    line             integer NOT NULL,
    sku              text    NOT NULL,
    name             text    NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_minor bigint  NOT NULL CHECK (unit_price_minor >= 0),
    currency         text    NOT NULL,
    PRIMARY KEY (order_id, line)
);

-- Every transition, with when and why.
CREATE TABLE order_status_history (
    id          bigserial   PRIMARY KEY,
    order_id    uuid        NOT NULL REFERENCES orders (id),
    from_status text,
    to_status   text        NOT NULL,
    reason      text,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX order_status_history_order ON order_status_history (order_id, id);
