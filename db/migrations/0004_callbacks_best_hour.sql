-- Lead selection, two more inputs (dialer/callbacks.py, dialer/selection.py, dialer/campaigns.py):
-- 1. Callbacks: a promise to call a debtor back at an agreed time. A due callback's lead is
--    claimed before any other lead, on the callback's number; it still goes through the
--    compliance gate.
-- 2. The learned best hour: each debtor's primary time zone, and per campaign the live-answer
--    rate by the debtor's local hour, which the periodic rescore turns into a bounded boost.

CREATE TABLE callbacks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The lead that will make (or made) the call; NULL: any open lead of the debt.
    lead_id       bigint REFERENCES leads (id),
    person_id     bigint NOT NULL REFERENCES persons (id),
    debt_id       bigint NOT NULL REFERENCES debts (id),
    -- The number to call back (NULL: the person's rotation picks one).
    phone_id      bigint REFERENCES phone_numbers (id),
    due_at        timestamptz NOT NULL,
    source        text NOT NULL CHECK (source IN ('ivr', 'agent', 'api')),
    requested_by  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Taken: the attempt that called back was written (same transaction as its intent).
    done_at       timestamptz,
    attempt_id    uuid REFERENCES call_attempts (id),
    cancelled_at  timestamptz,
    CHECK (done_at IS NULL OR cancelled_at IS NULL),
    CHECK (attempt_id IS NULL OR done_at IS NOT NULL)
);
-- Pending callbacks only (a small, hot set): the claim reads the due ones by due_at, the
-- gate's release and the lead-return trigger look them up by debt, people by person.
CREATE INDEX callbacks_pending_due_idx ON callbacks (due_at) INCLUDE (debt_id)
    WHERE done_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX callbacks_pending_debt_idx ON callbacks (debt_id, due_at)
    WHERE done_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX callbacks_pending_person_idx ON callbacks (person_id, due_at)
    WHERE done_at IS NULL AND cancelled_at IS NULL;

-- A lead back from a call (to 'ready', or to 'done' after an agent spoke to the debtor) whose
-- debt has a pending callback (typically asked for during that call) is due at the callback's
-- time at the latest. A lead released by the gate (claimed -> ready) is left alone: it waits
-- for the time compliance gave it.
CREATE FUNCTION leads_callback_return() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_due timestamptz;
BEGIN
    SELECT min(c.due_at) INTO v_due FROM callbacks c
    WHERE c.debt_id = NEW.debt_id AND c.done_at IS NULL AND c.cancelled_at IS NULL;
    IF v_due IS NOT NULL THEN
        NEW.next_try_at := CASE WHEN NEW.state = 'ready' THEN least(NEW.next_try_at, v_due)
                                ELSE v_due END;
        NEW.state := 'ready';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER leads_callback_return BEFORE UPDATE OF state ON leads
    FOR EACH ROW WHEN (OLD.state = 'in_call' AND NEW.state IN ('ready', 'done'))
    EXECUTE FUNCTION leads_callback_return();

-- Each debtor's primary time zone as the compliance engine resolves it (dialer.campaigns
-- .primary_zone), filled by the rescore; zone NULL: none usable. A change to the address, the
-- stated zone or the numbers drops the row, so the next rescore resolves it again.
CREATE TABLE person_zones (
    person_id    bigint PRIMARY KEY REFERENCES persons (id) ON DELETE CASCADE,
    zone         text,
    resolved_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION person_zones_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'persons' THEN
        DELETE FROM person_zones WHERE person_id = NEW.id;
    ELSE
        DELETE FROM person_zones
        WHERE person_id IN (NEW.person_id, OLD.person_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER persons_zone_changed AFTER UPDATE OF country, region, postal_code,
    stated_timezone ON persons FOR EACH ROW
    WHEN (OLD.country IS DISTINCT FROM NEW.country OR OLD.region IS DISTINCT FROM NEW.region
          OR OLD.postal_code IS DISTINCT FROM NEW.postal_code
          OR OLD.stated_timezone IS DISTINCT FROM NEW.stated_timezone)
    EXECUTE FUNCTION person_zones_forget();
CREATE TRIGGER phone_numbers_zone_inserted AFTER INSERT ON phone_numbers
    FOR EACH ROW EXECUTE FUNCTION person_zones_forget();
CREATE TRIGGER phone_numbers_zone_changed AFTER UPDATE OF person_id, e164, kind, status
    ON phone_numbers FOR EACH ROW
    WHEN (OLD.person_id IS DISTINCT FROM NEW.person_id OR OLD.e164 IS DISTINCT FROM NEW.e164
          OR OLD.kind IS DISTINCT FROM NEW.kind OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION person_zones_forget();

-- What the rescore learned last: per campaign and debtor's local hour, the dials and live
-- answers of the last 14 days, the smoothed answer rate and its bounded lift over the
-- campaign's rate ((rate - overall) / overall, in [-1, 1]).
CREATE TABLE campaign_answer_hours (
    campaign_id  bigint NOT NULL REFERENCES campaigns (id),
    hour         smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    dials        integer NOT NULL CHECK (dials >= 0),
    answers      integer NOT NULL CHECK (answers BETWEEN 0 AND dials),
    rate         double precision NOT NULL CHECK (rate BETWEEN 0 AND 1),
    lift         double precision NOT NULL CHECK (lift BETWEEN -1 AND 1),
    learned_at   timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, hour)
);

-- The learning reads a campaign's final attempts of the last days.
CREATE INDEX call_attempts_campaign_final_idx ON call_attempts (campaign_id, finalized_at)
    WHERE state = 'final';
