-- Compliance: the attempt ledger (what counts toward caps), attempt outcomes, operator overrides
-- and every decision with its reasons. The ledger, the outcomes and the decisions are
-- append-only; a reservation is made in the same transaction that read the ledger, under a
-- per-person advisory lock (compliance_snapshot), so several nodes can never exceed a cap.

-- Every decision, allowed or denied, with its reasons (as the core returned them). person_id
-- has no foreign key on purpose: a denial for an unknown person is recorded too.
CREATE TABLE compliance_decisions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    decided_at       timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    person_id        bigint,
    debt_ids         bigint[] NOT NULL DEFAULT '{}',
    phone_id         bigint,
    e164             text,
    channel          text NOT NULL,
    packs            text[] NOT NULL DEFAULT '{}',
    campaign         text,
    attempt_id       uuid,
    allowed          boolean NOT NULL,
    reserved         boolean NOT NULL DEFAULT false,
    next_allowed_at  timestamptz,
    timezones        text[] NOT NULL DEFAULT '{}',
    margin_s         integer,
    override_ids     bigint[] NOT NULL DEFAULT '{}',
    reasons          jsonb NOT NULL DEFAULT '[]'::jsonb,
    CHECK (NOT reserved OR allowed)
);
CREATE INDEX compliance_decisions_person_idx ON compliance_decisions (person_id, decided_at DESC);

-- One row per debt of a reserved call (a call about several debts counts for each), plus rows
-- for inbound contacts (direction 'inbound': they start cooldowns, they never count as calls).
CREATE TABLE compliance_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id   uuid NOT NULL,
    person_id    bigint NOT NULL REFERENCES persons (id),
    debt_id      bigint NOT NULL REFERENCES debts (id),
    phone_id     bigint REFERENCES phone_numbers (id),
    e164         text,
    number_kind  text NOT NULL
                 CHECK (number_kind IN ('mobile', 'landline', 'voip', 'toll_free', 'unknown')),
    channel      text NOT NULL
                 CHECK (channel IN ('voice', 'autodialed_voice', 'prerecorded', 'sms')),
    direction    text NOT NULL DEFAULT 'outbound' CHECK (direction IN ('outbound', 'inbound')),
    campaign     text,
    packs        text[] NOT NULL DEFAULT '{}',
    decision_id  bigint REFERENCES compliance_decisions (id),
    reserved_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (attempt_id, debt_id)
);
CREATE INDEX compliance_attempts_person_idx ON compliance_attempts (person_id, reserved_at);

-- What became of an attempt. Several rows may exist (e.g. 'voicemail' then a late
-- 'conversation'); an attempt is released only when every outcome of it releases the count
-- under the pack in question (busy / not_in_service under Reg F; 'not_placed' everywhere).
CREATE TABLE compliance_outcomes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id   uuid NOT NULL,
    person_id    bigint NOT NULL REFERENCES persons (id),
    outcome      text NOT NULL CHECK (outcome IN (
                     'no_answer', 'voicemail', 'machine', 'abandoned', 'busy', 'not_in_service',
                     'network_failure', 'wrong_party', 'direct_contact', 'conversation',
                     'not_placed')),
    at           timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (attempt_id, outcome)
);

-- An operator's waiver of soft rules (every soft rule the packs mark overridable when rule_ids
-- is empty) for a person, or one of their debts, during [valid_from, valid_until). Hard blocks
-- (cease, do-not-call, consent, invalid number, no time zone) can never be waived.
CREATE TABLE compliance_overrides (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id    bigint NOT NULL REFERENCES persons (id),
    debt_id      bigint REFERENCES debts (id),
    rule_ids     text[] NOT NULL DEFAULT '{}',
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL,
    reason       text NOT NULL CHECK (length(reason) > 0),
    granted_by   text NOT NULL CHECK (length(granted_by) > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CHECK (valid_until > valid_from)
);
CREATE INDEX compliance_overrides_person_idx ON compliance_overrides (person_id, valid_until);

CREATE FUNCTION compliance_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP;
END
$$;
CREATE TRIGGER compliance_decisions_no_change BEFORE UPDATE OR DELETE ON compliance_decisions
    FOR EACH ROW EXECUTE FUNCTION compliance_append_only();
CREATE TRIGGER compliance_attempts_no_change BEFORE UPDATE OR DELETE ON compliance_attempts
    FOR EACH ROW EXECUTE FUNCTION compliance_append_only();
CREATE TRIGGER compliance_outcomes_no_change BEFORE UPDATE OR DELETE ON compliance_outcomes
    FOR EACH ROW EXECUTE FUNCTION compliance_append_only();

-- The advisory-lock key of a person: 'comp' in the high 32 bits, the person id in the low 32
-- (two persons sharing a key only wait for each other).
CREATE FUNCTION compliance_lock_key(p_person bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (x'636f6d70'::bigint << 32) | (p_person & x'ffffffff'::bigint)
$$;

CREATE TYPE compliance_block_row AS (
    kind text, e164 text, person_id bigint, debt_id bigint, channel text,
    effective_at timestamptz, revoked_at timestamptz
);
CREATE TYPE compliance_consent_row AS (
    e164 text, channel text, granted boolean, recorded_at timestamptz, source text
);
CREATE TYPE compliance_override_row AS (
    id bigint, debt_id bigint, rule_ids text[], valid_from timestamptz, valid_until timestamptz,
    reason text
);
CREATE TYPE compliance_attempt_row AS (
    attempt_id uuid, debt_id bigint, number_kind text, channel text, direction text,
    reserved_at timestamptz, outcomes text[], outcome_ats timestamptz[]
);

-- Lock the person, then read (with a fresh snapshot, after the lock) everything a decision
-- needs in one round trip. Call it inside a transaction; the lock lasts until it ends.
-- The number is found by id (p_phone_id) or by the person's e164 (p_e164).
CREATE FUNCTION compliance_snapshot(
    p_person bigint, p_debts bigint[], p_phone_id bigint, p_e164 text,
    p_since timestamptz, p_now timestamptz, p_attempt uuid
) RETURNS TABLE (
    person_found boolean, country text, region text, postal_code text, stated_timezone text,
    phone_id bigint, e164 text, phone_kind text, phone_status text,
    debts_found bigint[], attempt_exists boolean,
    blocks compliance_block_row[], consents compliance_consent_row[],
    overrides compliance_override_row[], attempts compliance_attempt_row[]
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(compliance_lock_key(p_person));
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
              WHERE a.person_id = p_person AND a.reserved_at >= p_since)
    FROM (SELECT 1) AS one
    LEFT JOIN persons p ON p.id = p_person
    LEFT JOIN ph ON true;
END
$$;

-- Record an outcome of a reserved attempt under the person's lock. Returns 'recorded',
-- 'duplicate' (already recorded: idempotent) or 'unknown' (no such attempt).
CREATE FUNCTION compliance_record_outcome(p_attempt uuid, p_outcome text, p_at timestamptz)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_person bigint;
    v_id bigint;
BEGIN
    SELECT a.person_id INTO v_person FROM compliance_attempts a
    WHERE a.attempt_id = p_attempt LIMIT 1;
    IF v_person IS NULL THEN
        RETURN 'unknown';
    END IF;
    PERFORM pg_advisory_xact_lock(compliance_lock_key(v_person));
    INSERT INTO compliance_outcomes (attempt_id, person_id, outcome, at)
    VALUES (p_attempt, v_person, p_outcome, p_at)
    ON CONFLICT (attempt_id, outcome) DO NOTHING
    RETURNING id INTO v_id;
    RETURN CASE WHEN v_id IS NULL THEN 'duplicate' ELSE 'recorded' END;
END
$$;
