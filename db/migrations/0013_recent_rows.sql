-- Screens that show recent rows read only those, not the tables' history. Found on a database of
-- 500,000 attempts, 450,000 compliance decisions and 60,000 promises, with the generic plans
-- PostgreSQL caches for prepared statements (tests/_plans.py): each refresh of the supervisor
-- wallboard took ~500 ms (every second, per open board), the supervisor's attempts list ~400 ms.
-- call_attempts and compliance_decisions take a row on every dial: two indexes on the first (one
-- skips inbound calls), a partial one (denials only) on the second.

-- The wallboard (web/_wallboard.py): each campaign's attempts of today and of its abandonment
-- window, by campaign and time; the disposition included so that the window's rows, older than
-- today and all-visible once vacuumed, are counted from the index alone. Also the supervisor's
-- attempts list of one campaign (web/_agents.py), newest first. Was: every attempt, hash-joined.
CREATE INDEX call_attempts_campaign_created_idx ON call_attempts (campaign_id, created_at)
    INCLUDE (disposition) WHERE campaign_id IS NOT NULL;
-- The supervisor's attempts list (web/_agents.py): everyone's newest first, in its exact order
-- (ORDER BY created_at DESC, id), so that it stops after the page. Was: every attempt, sorted.
-- Partial on a condition every attempt meets, which only that statement states: the lists of
-- one agent or one campaign cannot use it. Their generic plans guess what share of the rows is
-- theirs, and may walk this index from the newest, filtering, rather than their own index:
-- through the whole history for an agent or a campaign without recent calls.
CREATE INDEX call_attempts_created_idx ON call_attempts (created_at DESC, id)
    WHERE created_at > '-infinity';
-- The wallboard's compliance denials of today by campaign and reason (also the daily report's):
-- denials only, by time. Was: every decision.
CREATE INDEX compliance_decisions_denied_idx ON compliance_decisions (decided_at)
    WHERE NOT allowed;
-- The wallboard's promises of today. Was: every promise, and a hash of every attempt.
CREATE INDEX promises_created_idx ON promises (created_at);
