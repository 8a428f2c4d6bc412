-- The compliance ledger and the audit log refuse UPDATE and DELETE row by row (0001, 0002), but
-- row triggers do not fire on TRUNCATE: one statement could empty the history the caps and the
-- regulator read. A statement trigger refuses it too. (A superuser can still drop or disable
-- triggers: that needs a role of its own for the service, which is the deployment's to give.)
CREATE TRIGGER compliance_decisions_no_truncate BEFORE TRUNCATE ON compliance_decisions
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_append_only();
CREATE TRIGGER compliance_attempts_no_truncate BEFORE TRUNCATE ON compliance_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_append_only();
CREATE TRIGGER compliance_outcomes_no_truncate BEFORE TRUNCATE ON compliance_outcomes
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
