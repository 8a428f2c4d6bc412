-- Puente core schema: what must survive a restart (ARCHITECTURE.md, "State").
-- Time is stored in UTC (timestamptz); local time is computed in the application with zoneinfo.
-- Card data never enters the database: payments keep a gateway token, the brand and the last four
-- digits only.

CREATE TABLE creditors (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name            text NOT NULL,
    -- The business name a voicemail may reveal (Reg F limited content: not "debt collection").
    public_name     text NOT NULL,
    callback_number text NOT NULL,
    currency        char(3) NOT NULL DEFAULT 'USD',
    policy          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE persons (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_ref    text,
    full_name       text NOT NULL,
    language        text NOT NULL DEFAULT 'es' CHECK (language IN ('es', 'en')),
    date_of_birth   date,
    -- Address: the country (ISO 3166-1 alpha-2), region (ISO 3166-2 subdivision code, e.g. 'TX',
    -- 'CDMX') and postal code feed time-zone and holiday resolution.
    address_line    text,
    city            text,
    region          text,
    postal_code     text,
    country         char(2),
    -- A time zone the debtor stated (IANA name); overrides every other candidate zone.
    stated_timezone text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (external_ref)
);

CREATE TABLE debts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id        bigint NOT NULL REFERENCES persons (id),
    creditor_id      bigint NOT NULL REFERENCES creditors (id),
    account_ref      text NOT NULL,
    balance_cents    bigint NOT NULL CHECK (balance_cents >= 0),
    currency         char(3) NOT NULL,
    days_past_due    integer NOT NULL DEFAULT 0 CHECK (days_past_due >= 0),
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'promised', 'paid', 'disputed', 'closed')),
    -- Self-service lockout after repeated failed identity checks (IVR).
    ivr_locked_until timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (creditor_id, account_ref)
);
CREATE INDEX debts_person_idx ON debts (person_id);

CREATE TABLE phone_numbers (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     bigint NOT NULL REFERENCES persons (id),
    e164          text NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    kind          text NOT NULL DEFAULT 'unknown'
                  CHECK (kind IN ('mobile', 'landline', 'voip', 'toll_free', 'unknown')),
    source        text NOT NULL DEFAULT 'import',
    status        text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'invalid', 'wrong_party', 'disconnected')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_id, e164)
);
CREATE INDEX phone_numbers_e164_idx ON phone_numbers (e164);

-- Consent per number and channel (e.g. autodialed calls to a mobile: 47 USC 227(b)(1)(A)(iii)).
CREATE TABLE consents (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone_id      bigint NOT NULL REFERENCES phone_numbers (id),
    channel       text NOT NULL CHECK (channel IN ('voice', 'autodialed_voice', 'prerecorded', 'sms')),
    granted       boolean NOT NULL,
    source        text NOT NULL,
    recorded_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_phone_idx ON consents (phone_id, channel, recorded_at DESC);

-- Do-not-call and cease-communication entries: per number, per person, or per person x debt.
CREATE TABLE contact_blocks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('dnc', 'cease')),
    e164          text CHECK (e164 IS NULL OR e164 ~ '^\+[1-9][0-9]{6,14}$'),
    person_id     bigint REFERENCES persons (id),
    debt_id       bigint REFERENCES debts (id),
    channel       text NOT NULL DEFAULT 'all',
    source        text NOT NULL,
    reason        text,
    effective_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (e164 IS NOT NULL OR person_id IS NOT NULL)
);
CREATE INDEX contact_blocks_e164_idx ON contact_blocks (e164) WHERE e164 IS NOT NULL;
CREATE INDEX contact_blocks_person_idx ON contact_blocks (person_id) WHERE person_id IS NOT NULL;

CREATE TABLE campaigns (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                 text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name                 text NOT NULL,
    creditor_id          bigint REFERENCES creditors (id),
    mode                 text NOT NULL DEFAULT 'progressive'
                         CHECK (mode IN ('preview', 'progressive', 'predictive', 'agentless')),
    state                text NOT NULL DEFAULT 'draft'
                         CHECK (state IN ('draft', 'running', 'paused', 'stopped')),
    queue_name           text NOT NULL DEFAULT 'collections',
    trunk                text NOT NULL DEFAULT 'PJSIP/trunk',
    caller_id            text,
    compliance_packs     text[] NOT NULL DEFAULT '{}',
    ring_timeout_s       integer NOT NULL DEFAULT 25 CHECK (ring_timeout_s BETWEEN 5 AND 120),
    window_margin_s      integer NOT NULL DEFAULT 90 CHECK (window_margin_s >= 0),
    abandon_target       numeric(5, 4) NOT NULL DEFAULT 0.03 CHECK (abandon_target BETWEEN 0 AND 1),
    abandon_window_days  integer NOT NULL DEFAULT 30 CHECK (abandon_window_days >= 1),
    retry_schedule       jsonb NOT NULL DEFAULT '{}'::jsonb,
    agentless_flow       text,
    settings             jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE leads (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id     bigint NOT NULL REFERENCES campaigns (id),
    person_id       bigint NOT NULL REFERENCES persons (id),
    debt_id         bigint NOT NULL REFERENCES debts (id),
    state           text NOT NULL DEFAULT 'ready'
                    CHECK (state IN ('ready', 'claimed', 'in_call', 'waiting', 'done', 'cancelled')),
    priority        integer NOT NULL DEFAULT 0,
    next_try_at     timestamptz NOT NULL DEFAULT now(),
    claimed_by      text,
    claimed_at      timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_outcome    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, debt_id)
);
CREATE INDEX leads_pick_idx ON leads (campaign_id, state, next_try_at, priority DESC);

-- One outbound (or inbound) call attempt. Written 'originating' before the AMI Originate;
-- exactly one final disposition.
CREATE TABLE call_attempts (
    id                uuid PRIMARY KEY,
    lead_id           bigint REFERENCES leads (id),
    campaign_id       bigint REFERENCES campaigns (id),
    person_id         bigint REFERENCES persons (id),
    debt_id           bigint REFERENCES debts (id),
    phone_id          bigint REFERENCES phone_numbers (id),
    direction         text NOT NULL DEFAULT 'outbound' CHECK (direction IN ('outbound', 'inbound')),
    node              text NOT NULL,
    pbx               text NOT NULL,
    state             text NOT NULL DEFAULT 'originating'
                      CHECK (state IN ('originating', 'ringing', 'answered', 'amd', 'queued',
                                       'connected', 'ivr', 'wrapup', 'final')),
    channel           text,
    uniqueid          text,
    originate_reason  integer,
    hangup_cause      integer,
    dial_status       text,
    amd_status        text,
    amd_cause         text,
    agent_id          bigint,
    disposition       text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    originated_at     timestamptz,
    answered_at       timestamptz,
    connected_at      timestamptz,
    ended_at          timestamptz,
    finalized_at      timestamptz,
    CHECK ((state = 'final') = (disposition IS NOT NULL))
);
CREATE INDEX call_attempts_open_idx ON call_attempts (pbx, state) WHERE state <> 'final';
CREATE INDEX call_attempts_lead_idx ON call_attempts (lead_id);

CREATE TABLE agents (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code          text NOT NULL UNIQUE,
    name          text NOT NULL,
    interface     text NOT NULL UNIQUE,  -- queue member interface, e.g. PJSIP/agent101
    user_id       bigint,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Agent state changes, append-only (the current state is the latest row).
CREATE TABLE agent_states (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id      bigint NOT NULL REFERENCES agents (id),
    state         text NOT NULL
                  CHECK (state IN ('logged_out', 'ready', 'paused', 'ringing', 'talking', 'wrapup')),
    reason        text,
    attempt_id    uuid REFERENCES call_attempts (id),
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_states_agent_idx ON agent_states (agent_id, at DESC);

CREATE TABLE dispositions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id    uuid NOT NULL UNIQUE REFERENCES call_attempts (id),
    code          text NOT NULL,
    source        text NOT NULL CHECK (source IN ('pbx', 'amd', 'agent', 'ivr', 'reconciler')),
    agent_id      bigint REFERENCES agents (id),
    notes         text,
    callback_at   timestamptz,
    at            timestamptz NOT NULL DEFAULT now()
);

-- IVR sessions: the flow, the states visited and the outcome. Never card data or payment DTMF.
CREATE TABLE ivr_sessions (
    id            uuid PRIMARY KEY,
    attempt_id    uuid REFERENCES call_attempts (id),
    flow          text NOT NULL,
    language      text NOT NULL,
    person_id     bigint REFERENCES persons (id),
    debt_id       bigint REFERENCES debts (id),
    verified      boolean NOT NULL DEFAULT false,
    outcome       text,
    trail         jsonb NOT NULL DEFAULT '[]'::jsonb,
    started_at    timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz
);

CREATE TABLE promises (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    debt_id           bigint NOT NULL REFERENCES debts (id),
    attempt_id        uuid REFERENCES call_attempts (id),
    source            text NOT NULL CHECK (source IN ('agent', 'ivr', 'api')),
    plan              jsonb NOT NULL,  -- instalments: [{"due": "YYYY-MM-DD", "amount_cents": N}]
    total_cents       bigint NOT NULL CHECK (total_cents > 0),
    confirmation_code text NOT NULL UNIQUE,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'kept', 'broken', 'cancelled')),
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX promises_debt_idx ON promises (debt_id);

CREATE TABLE payments (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    debt_id          bigint NOT NULL REFERENCES debts (id),
    promise_id       bigint REFERENCES promises (id),
    idempotency_key  text NOT NULL UNIQUE,
    amount_cents     bigint NOT NULL CHECK (amount_cents > 0),
    currency         char(3) NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'approved', 'declined', 'error')),
    gateway          text NOT NULL,
    gateway_ref      text,
    card_token       text,
    card_brand       text,
    card_last4       char(4) CHECK (card_last4 IS NULL OR card_last4 ~ '^[0-9]{4}$'),
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL UNIQUE,
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent')),
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE agents ADD CONSTRAINT agents_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE call_attempts ADD CONSTRAINT call_attempts_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id);

-- Append-only audit log of every change made by a user or an operator command.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    subject     text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
