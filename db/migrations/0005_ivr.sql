-- IVR self-service: identity checks with lockout, sessions linked to their call, promises and
-- payments that say which IVR session made them. Still no card data anywhere: payments keep a
-- gateway token, the brand and the last four digits.

-- The last four digits of the debtor's identity document: a second factor a creditor may ask.
ALTER TABLE persons ADD COLUMN id_last4 char(4) CHECK (id_last4 IS NULL OR id_last4 ~ '^[0-9]{4}$');

ALTER TABLE ivr_sessions
    ADD COLUMN entry text,
    ADD COLUMN node text,
    ADD COLUMN uniqueid text,
    ADD COLUMN caller text,              -- masked (+52*******4567), never the full number
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX ivr_sessions_attempt_idx ON ivr_sessions (attempt_id) WHERE attempt_id IS NOT NULL;

-- Failed identity checks, per debt (NULL when the account was not found) and session. Counted
-- over the creditor's lockout window to lock the account's self-service.
CREATE TABLE ivr_auth_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    debt_id     bigint REFERENCES debts (id),
    session_id  uuid NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ivr_auth_failures_debt_idx ON ivr_auth_failures (debt_id, at) WHERE debt_id IS NOT NULL;

ALTER TABLE promises
    ADD COLUMN ivr_session_id uuid REFERENCES ivr_sessions (id),
    ADD COLUMN kind text NOT NULL DEFAULT 'custom'
        CHECK (kind IN ('full', 'settlement', 'plan', 'custom')),
    ADD COLUMN first_due date,
    ADD COLUMN last_due date,
    ADD COLUMN broken_at timestamptz;
CREATE INDEX promises_active_due_idx ON promises (last_due) WHERE status = 'active';

ALTER TABLE payments
    ADD COLUMN ivr_session_id uuid REFERENCES ivr_sessions (id),
    ADD COLUMN decline_reason text,
    ADD COLUMN confirmation_code text UNIQUE,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
