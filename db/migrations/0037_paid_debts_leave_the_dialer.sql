-- A debt paid or closed (by the IVR's payment, an agent, an import) is no longer dialed: its
-- leads still ready or waiting are cancelled when its status changes. The claim also skips a
-- lead whose debt is paid or closed (dialer/selection.py): one in a call when the debt was
-- paid comes back ready from that call's result, and is never dialed again either.
CREATE FUNCTION debts_closed_cancel_leads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE leads SET state = 'cancelled', last_outcome = 'debt_' || NEW.status
    WHERE debt_id = NEW.id AND state IN ('ready', 'waiting');
    RETURN NULL;
END
$$;
CREATE TRIGGER debts_closed_cancel_leads AFTER UPDATE OF status ON debts
    FOR EACH ROW WHEN (NEW.status IN ('paid', 'closed') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION debts_closed_cancel_leads();
