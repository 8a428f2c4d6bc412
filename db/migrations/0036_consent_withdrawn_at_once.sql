-- A withdrawn consent counts as soon as it is committed, whatever its date: the snapshot read
-- only consents recorded by the decision's instant, so a withdrawal dated a few seconds ahead
-- (clocks of two machines, the API's five minutes of slack) was filtered out and the number
-- dialed on the grant before it. A grant still counts from its date (compliance._core).
-- The function is 0021's otherwise.

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
              FROM consents c
              WHERE c.phone_id = ph.id AND (c.recorded_at <= p_now OR NOT c.granted)),
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
