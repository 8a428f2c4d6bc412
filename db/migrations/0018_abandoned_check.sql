-- An 'abandoned' disposition always carries the abandoned flag (0014): the database now says
-- so, and every abandonment count reads the flag alone. The only writer (write_result) has
-- always set both; a row that broke the rule (an import by hand, a tool) is mended first.
-- NOT VALID, then VALIDATE: the check scans the table without blocking writes to it.
UPDATE call_attempts SET abandoned = true WHERE disposition = 'abandoned' AND NOT abandoned;
ALTER TABLE call_attempts ADD CONSTRAINT call_attempts_abandoned_flag
    CHECK (abandoned OR disposition IS DISTINCT FROM 'abandoned') NOT VALID;
ALTER TABLE call_attempts VALIDATE CONSTRAINT call_attempts_abandoned_flag;
