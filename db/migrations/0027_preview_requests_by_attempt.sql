-- The reconcile after a reconnect or a restart asks, for each open attempt, whether it is a
-- preview offer never dialed (its request not 'dialed'): such an attempt was never
-- originated, so it ends 'skipped' (not placed), not 'lost'.
CREATE INDEX preview_requests_attempt_idx ON preview_requests (attempt_id)
    WHERE attempt_id IS NOT NULL;
