-- An abandoned call stays abandoned. Under the 2 s rule (TSR 16 CFR 310.4(b)(4)(iii)) a live
-- answer that reached no agent in time is abandoned whatever happens next; but a person who
-- then asks the safe-harbor menu for an agent may reach one, and that call's disposition is
-- 'agent' (a conversation: its lead is done). The flag keeps the abandonment for the
-- abandonment rate (the pacer's window, the wallboard, the reports), which counted only the
-- disposition and missed those calls.
ALTER TABLE call_attempts ADD COLUMN abandoned boolean NOT NULL DEFAULT false;
UPDATE call_attempts SET abandoned = true WHERE disposition = 'abandoned';

-- The abandonment window's rows are counted from the index alone (0013): it carries the flag.
DROP INDEX call_attempts_campaign_created_idx;
CREATE INDEX call_attempts_campaign_created_idx ON call_attempts (campaign_id, created_at)
    INCLUDE (disposition, abandoned) WHERE campaign_id IS NOT NULL;
