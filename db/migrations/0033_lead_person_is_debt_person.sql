-- A lead's person is its debt's person: one composite foreign key,
--   leads (debt_id, person_id) -> debts (id, person_id),
-- instead of two single ones (leads -> debts, leads -> persons; the debt's own key to persons
-- says the person exists). Nothing stopped a lead from naming one person and another person's
-- debt: the dialer would have called someone about a debt that is not theirs (a wrong-party
-- call, and a disclosure of the debt to them). And one check fewer: PostgreSQL checks a foreign
-- key with a query per row written, and a lead import writes a lead per row (the unique index
-- the key needs grows at its right edge, as ids come: cheaper than the check it replaces).
-- Nothing updates either column (the import's upserts never change a debt's person).
-- Leads that break the rule stop the migration with a message naming one: which side is
-- right is not something to guess.
DO $$
DECLARE
    bad bigint;
    example bigint;
BEGIN
    SELECT count(*), min(l.id) INTO bad, example
    FROM leads l JOIN debts d ON d.id = l.debt_id WHERE d.person_id <> l.person_id;
    IF bad > 0 THEN
        RAISE EXCEPTION '% lead(s) name a person other than their debt''s (lead id % is one)',
            bad, example
            USING HINT = 'set leads.person_id to the debt''s person (or fix the debt), then '
                         'migrate again';
    END IF;
END $$;

ALTER TABLE debts ADD CONSTRAINT debts_id_person_key UNIQUE (id, person_id);
ALTER TABLE leads
    DROP CONSTRAINT leads_debt_id_fkey,
    DROP CONSTRAINT leads_person_id_fkey,
    ADD CONSTRAINT leads_debt_person_fkey FOREIGN KEY (debt_id, person_id)
        REFERENCES debts (id, person_id) NOT VALID;
ALTER TABLE leads VALIDATE CONSTRAINT leads_debt_person_fkey;
