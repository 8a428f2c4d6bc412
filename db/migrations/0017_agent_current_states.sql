-- An agent's state is its newest agent_states row (on a tie, the one written last). The web
-- API, the agent desktop and each campaign's pacer read it; they read it from this view, so
-- that "newest" means one thing everywhere. Reading one agent's state walks
-- agent_states_agent_idx (agent_id, at DESC) to its first entry.
CREATE VIEW agent_current_states AS
SELECT a.id AS agent_id, s.state, s.reason, s.at
FROM agents a
CROSS JOIN LATERAL (
    SELECT st.state, st.reason, st.at FROM agent_states st
    WHERE st.agent_id = a.id ORDER BY st.at DESC, st.id DESC LIMIT 1
) s;
