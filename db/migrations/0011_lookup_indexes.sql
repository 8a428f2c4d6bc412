-- Lookups that read a whole table (or a whole index) on every call at production scale, found by
-- running the hot statements on hundreds of thousands of rows, with the generic plans
-- PostgreSQL caches for prepared statements (tests/_plans.py):
-- 1. A callback makes its debt's open leads due (dialer/callbacks.py): leads by debt. The
--    unique (campaign_id, debt_id) index cannot be searched by its second column: every
--    lead's entry was read (~8 ms at 250,000 leads, growing with the table).
CREATE INDEX leads_debt_idx ON leads (debt_id);
-- 2. The screen pop (web/_screenpop.py), on every call an agent takes: the debt's last final
--    attempts, the IVR session of an inbound or transferred call by its channel's Uniqueid,
--    and the contact blocks on the debt. Each was a sequential scan (together ~140 ms at
--    500,000 attempts, 200,000 IVR sessions and 100,000 blocks; ~1 ms with these).
CREATE INDEX call_attempts_debt_final_idx ON call_attempts (debt_id, created_at)
    WHERE state = 'final';
CREATE INDEX ivr_sessions_uniqueid_idx ON ivr_sessions (uniqueid) WHERE uniqueid IS NOT NULL;
CREATE INDEX contact_blocks_debt_idx ON contact_blocks (debt_id) WHERE debt_id IS NOT NULL;
