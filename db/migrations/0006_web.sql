-- The web server: browser sessions, API tokens and the error reports of lead uploads.
-- Tokens are random 256-bit secrets given to the client once; only their SHA-256 is stored, so
-- a copy of the database lets nobody in.

CREATE TABLE web_sessions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    user_id       bigint NOT NULL REFERENCES users (id),
    -- Sent back by the page with every state-changing request (header X-CSRF-Token or form
    -- field csrf_token); useless without the session cookie.
    csrf_token    text NOT NULL,
    client        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id) WHERE revoked_at IS NULL;
-- Housekeeping deletes sessions ended long ago (web/_housekeeping.py).
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);

CREATE TABLE api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    user_id       bigint NOT NULL REFERENCES users (id),
    name          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- A lead upload through the API: who, into which campaign, the summary, and the rejected rows
-- (the importer's errors CSV, capped) for GET /api/v1/imports/{id}/errors.csv.
CREATE TABLE web_imports (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id      bigint NOT NULL REFERENCES campaigns (id),
    actor            text NOT NULL,
    summary          jsonb NOT NULL,
    errors_csv       text,
    errors_truncated boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_imports_created_idx ON web_imports (created_at) WHERE errors_csv IS NOT NULL;

-- Agent dispositions are looked up by agent (an agent's own calls).
CREATE INDEX call_attempts_agent_idx ON call_attempts (agent_id, created_at DESC)
    WHERE agent_id IS NOT NULL;
