-- The W3C trace context of the request that placed (or cancelled) an order. The saga's worker
-- picks an order up later, in another task or replica; it parents its steps on this, so one
-- checkout is one trace from the gateway to the email.
ALTER TABLE orders ADD COLUMN traceparent text;
