-- The lead import refreshes the statistics of what it loaded (the claim's plans are chosen from
-- them). ANALYZE is for a table's owner: run by the service's own role (db/grants.py), which
-- owns nothing, it was skipped with a warning nobody saw. This function, owned by the schema's
-- owner and run with its rights, analyses those four tables and nothing else.
CREATE FUNCTION analyze_lead_tables() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    ANALYZE persons, debts, phone_numbers, leads;
END $$;
REVOKE ALL ON FUNCTION analyze_lead_tables() FROM PUBLIC;
