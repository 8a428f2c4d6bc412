-- What a claim needs of its leads' persons, as claim_persons (0026) gives it, but with every
-- active number of the person in rotation order instead of the first one only: least recently
-- reserved first (never reserved first of all), then by id. When the gate denies a dial for a
-- reason tied to the number (a do-not-call entry on it, no consent for it, its time zone
-- outside the calling window...), the same claim tries the next one (dialer/selection.py).
-- Locks first (in the order given, the caller sorts them), then, in a statement of its own
-- (a fresh snapshot: it sees what a claim that held a lock committed), whether each person has
-- an attempt not yet final and the numbers. No active number: empty arrays. Each person's
-- numbers are found by (person_id, e164), and each number's last reservation by the person's
-- ledger index: the cost follows the claimed persons, never the campaign.
-- claim_persons stays for nodes still running the code that calls it.
CREATE FUNCTION claim_person_numbers(p_persons bigint[])
RETURNS TABLE (person_id bigint, busy boolean, phone_ids bigint[], e164s text[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_person bigint;
BEGIN
    FOREACH v_person IN ARRAY p_persons LOOP
        PERFORM pg_advisory_xact_lock(compliance_lock_key(v_person));
    END LOOP;
    RETURN QUERY
    SELECT q.pid,
           EXISTS (SELECT 1 FROM call_attempts a WHERE a.person_id = q.pid AND a.state <> 'final'),
           coalesce(r.ids, '{}'::bigint[]), coalesce(r.numbers, '{}'::text[])
    FROM unnest(p_persons) AS q (pid)
    LEFT JOIN LATERAL (
        SELECT array_agg(n.id ORDER BY t.last NULLS FIRST, n.id) AS ids,
               array_agg(n.e164 ORDER BY t.last NULLS FIRST, n.id) AS numbers
        FROM phone_numbers n
        LEFT JOIN LATERAL (
            SELECT max(a.reserved_at) AS last FROM compliance_attempts a
            WHERE a.person_id = n.person_id AND a.phone_id = n.id
        ) t ON true
        WHERE n.person_id = q.pid AND n.status = 'active'
    ) r ON true;
END
$$;
