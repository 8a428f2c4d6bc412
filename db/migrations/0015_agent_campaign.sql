-- An agent works one campaign at a time (as in VICIdial: an agent logs into one campaign). Each
-- campaign's pacer counts the free agents of its own queue; an agent in the queues of two active
-- campaigns was counted free by both pacers, and both dialed for them: more live answers than
-- agents, abandoned over the legal 3 % (TSR 16 CFR 310.4(b)(4)(i), FCC 47 CFR 64.1200(a)(7)).
-- campaign_id is the campaign the agent takes calls for: chosen when it goes ready on the desktop
-- (web/_agents.py), kept when it logs out (the next login's default); the leader of that campaign
-- seats the agent in its queue, and the leaders of the others take the agent out of theirs
-- (dialer/runner.py, _seat_agents). NULL: none chosen yet.
ALTER TABLE agents ADD COLUMN campaign_id bigint REFERENCES campaigns (id);
