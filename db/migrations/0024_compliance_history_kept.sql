-- What the gate decided on must stay as it was: a do-not-call entry deleted, a consent rewritten
-- or an override's window widened after the fact would make the ledger's decisions unexplainable
-- (the decisions keep their reasons and the override ids, not copies of these rows). So:
-- contact_blocks and compliance_overrides change only by being revoked (revoked_at set once,
-- nothing else touched), consents never change (a withdrawal is a new row), and none of the
-- three is deleted or truncated.
CREATE FUNCTION compliance_history_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME <> 'consents' THEN  -- (consents have no revoked_at)
        IF to_jsonb(OLD) ->> 'revoked_at' IS NULL AND to_jsonb(NEW) ->> 'revoked_at' IS NOT NULL
           AND (to_jsonb(OLD) - 'revoked_at') = (to_jsonb(NEW) - 'revoked_at') THEN
            RETURN NEW;  -- a revocation
        END IF;
    END IF;
    RAISE EXCEPTION '% keeps its history: % refused (revoke instead, or add a row)',
        TG_TABLE_NAME, TG_OP;
END
$$;
CREATE TRIGGER contact_blocks_history BEFORE UPDATE OR DELETE ON contact_blocks
    FOR EACH ROW EXECUTE FUNCTION compliance_history_kept();
CREATE TRIGGER compliance_overrides_history BEFORE UPDATE OR DELETE ON compliance_overrides
    FOR EACH ROW EXECUTE FUNCTION compliance_history_kept();
CREATE TRIGGER consents_history BEFORE UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION compliance_history_kept();
CREATE TRIGGER contact_blocks_no_truncate BEFORE TRUNCATE ON contact_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_history_kept();
CREATE TRIGGER compliance_overrides_no_truncate BEFORE TRUNCATE ON compliance_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_history_kept();
CREATE TRIGGER consents_no_truncate BEFORE TRUNCATE ON consents
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_history_kept();
