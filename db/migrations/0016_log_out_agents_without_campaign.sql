-- Agents logged in before 0015 were made members of every active campaign's queue, and they
-- have no campaign: no pacer takes them out, and every pacer still counts them free. They are
-- logged out once, here; each campaign's pacer then removes them from its queue within 30 s
-- (dialer/runner.py, _seat_agents: a member logged out on the desktop), and they log in again
-- choosing their campaign. (An agent logged in for the inbound queue alone has no campaign
-- either: it logs in again too, once.)
INSERT INTO agent_states (agent_id, state, reason, at)
SELECT a.id, 'logged_out', NULL, now()
FROM agents a
CROSS JOIN LATERAL (SELECT st.state FROM agent_states st WHERE st.agent_id = a.id
                    ORDER BY st.at DESC, st.id DESC LIMIT 1) s
WHERE a.campaign_id IS NULL AND s.state <> 'logged_out';
