-- An agent can be deactivated (someone who left, a seat taken out of service): it keeps its
-- history (states, calls, dispositions reference it), but it can no longer go ready or be
-- paused, so no campaign's queue holds it and no pacer counts it. Only a logged-out agent is
-- deactivated (web/_agents.py).
ALTER TABLE agents ADD COLUMN active boolean NOT NULL DEFAULT true;
