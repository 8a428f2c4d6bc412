-- The IVR's writes on a debt (a promise, a card payment) lock the debt's row and then read what
-- its rules need: the balance and status, the active promise, a payment whose outcome is
-- unknown. The read must come after the lock, in a statement of its own (in READ COMMITTED a
-- statement's subqueries see the snapshot taken before it waited for the lock); a function
-- gives each of its statements a fresh snapshot, so the two are one round trip. No row: the
-- debt is gone.
CREATE FUNCTION debt_lock_and_read(p_debt bigint, p_except_key text)
RETURNS TABLE (balance_cents bigint, status text, active_code text, unknown boolean)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM debts d WHERE d.id = p_debt FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT d.balance_cents, d.status,
           (SELECT p.confirmation_code FROM promises p
            WHERE p.debt_id = d.id AND p.status = 'active' ORDER BY p.id DESC LIMIT 1),
           EXISTS (SELECT 1 FROM payments pay
                   WHERE pay.debt_id = d.id AND pay.status = 'pending'
                     AND pay.idempotency_key IS DISTINCT FROM p_except_key)
    FROM debts d WHERE d.id = p_debt;
END
$$;
