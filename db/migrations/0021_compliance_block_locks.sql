-- Compliance: what denies a dial is serialized with the reservations it could deny.
--
-- A reservation reads the ledger, blocks, consents and the number under the person's advisory
-- lock and commits its decision under it. The ledger's own writers (outcomes, contacts) take
-- that lock; the writes that deny did not: a cease or do-not-call entry, a withdrawn consent or
-- a number marked wrong party / invalid / disconnected could commit between a reservation's
-- read and its commit, and the dial went out after the block was on record. Now each of these
-- takes the lock a reservation of the person (or of the number) holds, so either the
-- reservation saw it, or the reservation had committed before it:
--
-- 1. a block on a person (or one of their debts) takes the person's lock; a block on a number
--    takes the number's lock, which every reservation of that number holds (shared) after its
--    person's: attempt id, person, number, always in this order;
-- 2. a withdrawn consent takes its number's lock (a consent given only ever allows more);
-- 3. a number's status leaving 'active' takes its person's lock.
--
-- And the snapshot refuses to run outside READ COMMITTED: it relies on reading the ledger with
-- a snapshot taken after the lock, which a REPEATABLE READ or SERIALIZABLE transaction (say, a
-- server's default_transaction_isolation) does not give; the gate pins READ COMMITTED on its own
-- transactions and denies (COMPLIANCE_UNAVAILABLE) in any other.

-- The advisory-lock key of a number: 'comn' in the high 32 bits, the hash of the E.164 in the
-- low 32 (two numbers sharing a key only wait for each other).
CREATE FUNCTION compliance_number_lock_key(p_e164 text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (x'636f6d6e'::bigint << 32) | (hashtext(p_e164)::bigint & x'ffffffff'::bigint)
$$;

CREATE OR REPLACE FUNCTION compliance_snapshot(
    p_person bigint, p_debts bigint[], p_phone_id bigint, p_e164 text,
    p_since timestamptz, p_now timestamptz, p_attempt uuid
) RETURNS TABLE (
    person_found boolean, country text, region text, postal_code text, stated_timezone text,
    phone_id bigint, e164 text, phone_kind text, phone_status text,
    debts_found bigint[], attempt_exists boolean,
    blocks compliance_block_row[], consents compliance_consent_row[],
    overrides compliance_override_row[], attempts compliance_attempt_row[]
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_e164 text;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'compliance_snapshot needs READ COMMITTED, not %',
            current_setting('transaction_isolation')
            USING HINT = 'the ledger must be read after the person''s lock is taken';
    END IF;
    -- A reservation's attempt id first (an id reused for another person must be a
    -- duplicate too: the person's lock alone does not serialize those), then the person, then
    -- the number (shared: only a block or a withdrawn consent on it takes it exclusively).
    -- Always in this order, so two decisions never wait for each other in a cycle.
    IF p_attempt IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(x'636f6d70'::int, hashtext(p_attempt::text));
    END IF;
    PERFORM pg_advisory_xact_lock(compliance_lock_key(p_person));
    SELECT n.e164 INTO v_e164 FROM phone_numbers n
    WHERE n.person_id = p_person
      AND ((p_phone_id IS NOT NULL AND n.id = p_phone_id)
           OR (p_phone_id IS NULL AND n.e164 = p_e164))
    LIMIT 1;
    v_e164 := coalesce(v_e164, p_e164);
    IF v_e164 IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock_shared(compliance_number_lock_key(v_e164));
    END IF;
    RETURN QUERY
    WITH ph AS (
        SELECT n.id, n.e164, n.kind, n.status FROM phone_numbers n
        WHERE n.person_id = p_person
          AND ((p_phone_id IS NOT NULL AND n.id = p_phone_id)
               OR (p_phone_id IS NULL AND n.e164 = p_e164))
        LIMIT 1
    )
    SELECT
        p.id IS NOT NULL,
        p.country::text, p.region, p.postal_code, p.stated_timezone,
        ph.id, ph.e164, ph.kind, ph.status,
        ARRAY(SELECT d.id FROM debts d WHERE d.person_id = p_person AND d.id = ANY (p_debts)),
        EXISTS (SELECT 1 FROM compliance_attempts a WHERE a.attempt_id = p_attempt),
        ARRAY(SELECT ROW(b.kind, b.e164, b.person_id, b.debt_id, b.channel, b.effective_at,
                         b.revoked_at)::compliance_block_row
              FROM contact_blocks b
              WHERE (b.person_id = p_person OR b.e164 = coalesce(ph.e164, p_e164))
                AND (b.revoked_at IS NULL OR b.revoked_at > p_now)),
        ARRAY(SELECT ROW(ph.e164, c.channel, c.granted, c.recorded_at, c.source)
                         ::compliance_consent_row
              FROM consents c WHERE c.phone_id = ph.id AND c.recorded_at <= p_now),
        ARRAY(SELECT ROW(o.id, o.debt_id, o.rule_ids, o.valid_from, o.valid_until, o.reason)
                         ::compliance_override_row
              FROM compliance_overrides o
              WHERE o.person_id = p_person AND o.valid_until > p_now AND o.revoked_at IS NULL),
        ARRAY(SELECT ROW(a.attempt_id, a.debt_id, a.number_kind, a.channel, a.direction,
                         a.reserved_at,
                         ARRAY(SELECT o.outcome FROM compliance_outcomes o
                               WHERE o.attempt_id = a.attempt_id ORDER BY o.id),
                         ARRAY(SELECT o.at FROM compliance_outcomes o
                               WHERE o.attempt_id = a.attempt_id ORDER BY o.id)
                         )::compliance_attempt_row
              FROM compliance_attempts a
              WHERE a.person_id = p_person
                AND (a.reserved_at >= p_since
                     OR a.attempt_id IN (SELECT o.attempt_id FROM compliance_outcomes o
                                         WHERE o.person_id = p_person AND o.at >= p_since)))
    FROM (SELECT 1) AS one
    LEFT JOIN persons p ON p.id = p_person
    LEFT JOIN ph ON true;
END
$$;

-- 1. Blocks: the person's lock, then the number's (the snapshot's order).
CREATE FUNCTION compliance_block_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.person_id IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(compliance_lock_key(NEW.person_id));
    END IF;
    IF NEW.e164 IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(compliance_number_lock_key(NEW.e164));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER contact_blocks_lock BEFORE INSERT OR UPDATE ON contact_blocks
    FOR EACH ROW EXECUTE FUNCTION compliance_block_lock();

-- 2. A withdrawn consent: its number's lock.
CREATE FUNCTION compliance_consent_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(compliance_number_lock_key(n.e164))
    FROM phone_numbers n WHERE n.id = NEW.phone_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER consents_withdrawn_lock BEFORE INSERT OR UPDATE ON consents
    FOR EACH ROW WHEN (NOT NEW.granted) EXECUTE FUNCTION compliance_consent_lock();

-- 3. A number no longer active: its person's lock.
CREATE FUNCTION compliance_phone_status_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(compliance_lock_key(NEW.person_id));
    RETURN NEW;
END
$$;
CREATE TRIGGER phone_numbers_status_lock BEFORE UPDATE OF status ON phone_numbers
    FOR EACH ROW WHEN (NEW.status <> 'active' AND NEW.status IS DISTINCT FROM OLD.status)
    EXECUTE FUNCTION compliance_phone_status_lock();
