-- The W3C trace context of the handling of the event a notification answers. The delivery
-- worker sends it later, in another task or replica; it parents the send on this, so the email
-- is in the trace of the checkout that caused it.
ALTER TABLE notifications ADD COLUMN traceparent text;
