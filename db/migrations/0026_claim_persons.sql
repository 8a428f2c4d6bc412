-- What a claim needs of its leads' persons, in one round trip: their compliance locks (taken in
-- the order given, the caller sorts them; the gate takes them again, a no-op), then, in a
-- statement of its own (a fresh snapshot: it sees what a claim that held a lock committed),
-- whether each has an attempt not yet final (one call at a time to a person) and the number to
-- dial: the active number tried least recently (never tried first), so a debtor's numbers
-- rotate. No number: phone_id is NULL.
CREATE FUNCTION claim_persons(p_persons bigint[])
RETURNS TABLE (person_id bigint, phone_id bigint, e164 text, busy boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_person bigint;
BEGIN
    FOREACH v_person IN ARRAY p_persons LOOP
        PERFORM pg_advisory_xact_lock(compliance_lock_key(v_person));
    END LOOP;
    RETURN QUERY
    SELECT q.pid, r.id, r.e164,
           EXISTS (SELECT 1 FROM call_attempts a WHERE a.person_id = q.pid AND a.state <> 'final')
    FROM unnest(p_persons) AS q (pid)
    LEFT JOIN LATERAL (
        SELECT n.id, n.e164 FROM phone_numbers n
        LEFT JOIN LATERAL (
            SELECT max(a.reserved_at) AS last FROM compliance_attempts a
            WHERE a.person_id = n.person_id AND a.phone_id = n.id
        ) t ON true
        WHERE n.person_id = q.pid AND n.status = 'active'
        ORDER BY t.last NULLS FIRST, n.id
        LIMIT 1
    ) r ON true;
END
$$;
