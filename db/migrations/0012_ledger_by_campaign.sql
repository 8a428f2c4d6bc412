-- A new pacer releases the reservations of its campaign that never became an attempt
-- (dialer/runner.py, at takeover), over the look-back its caps count: by campaign and time,
-- not by reading the whole ledger.
CREATE INDEX compliance_attempts_campaign_idx ON compliance_attempts (campaign, reserved_at);
