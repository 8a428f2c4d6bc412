-- Preview mode: an agent asks for the next lead, sees it (the screen pop of its attempt), and
-- starts the call or skips it. The campaign's pacer (the node holding its lock) serves the
-- requests: it claims and gates one lead per request (the attempt row is the intent, as for
-- any dial), originates an accepted one to the agent's own preview queue, and ends a skipped
-- one as 'skipped' (not placed: the ledger reservation is released).
CREATE TABLE preview_requests (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES campaigns (id),
    agent_id    bigint NOT NULL REFERENCES agents (id),
    state       text NOT NULL DEFAULT 'wanted'
                CHECK (state IN ('wanted', 'offered', 'accepted', 'dialed', 'skipped', 'closed',
                                 'none')),
    attempt_id  uuid REFERENCES call_attempts (id),
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- One open request per agent.
CREATE UNIQUE INDEX preview_requests_open_idx ON preview_requests (agent_id)
    WHERE state IN ('wanted', 'offered', 'accepted', 'skipped');
CREATE INDEX preview_requests_todo_idx ON preview_requests (campaign_id, id)
    WHERE state IN ('wanted', 'accepted', 'skipped');
