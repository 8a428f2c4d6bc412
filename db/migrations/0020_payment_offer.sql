-- A card payment's outcome can be unknown (the gateway did not answer in time): the row stays
-- 'pending' and is settled later by asking the gateway under its idempotency key. Applying an
-- approved payment then needs what the caller chose (a plan's first instalment leaves a promise
-- for the rest), which was only in the call's memory: it is kept with the payment.
ALTER TABLE payments ADD COLUMN offer jsonb;
CREATE INDEX payments_pending_idx ON payments (updated_at) WHERE status = 'pending';
