-- A person's external_ref is the creditor's id of that person: unique per creditor, not across
-- them. Two creditors both using "1001" (or the import's default, the account number, which
-- is unique only per creditor) were merged into one person: the second file's name over the
-- first's, both creditors' numbers on one person, so each creditor's debtor could be called on
-- the other's numbers. The merge key of `puente leads import` is now (creditor, external_ref).
ALTER TABLE persons ADD COLUMN creditor_id bigint REFERENCES creditors (id);

-- Imported persons belong to the creditor of their debts. A person with debts of several
-- creditors (merged before this migration) keeps no creditor: a new import from either
-- creditor makes a person of its own, and the old row is left for a supervisor to review
-- (the NOTICE counts them).
UPDATE persons p SET creditor_id = d.creditor_id
FROM (SELECT person_id, min(creditor_id) AS creditor_id FROM debts
      GROUP BY person_id HAVING count(DISTINCT creditor_id) = 1) d
WHERE p.id = d.person_id AND p.external_ref IS NOT NULL;

DO $$
DECLARE merged bigint;
BEGIN
    SELECT count(*) INTO merged FROM persons
    WHERE external_ref IS NOT NULL AND creditor_id IS NULL
      AND EXISTS (SELECT 1 FROM debts WHERE debts.person_id = persons.id);
    IF merged > 0 THEN
        RAISE NOTICE '% imported persons hold debts of several creditors: review them', merged;
    END IF;
END $$;

ALTER TABLE persons DROP CONSTRAINT persons_external_ref_key;
ALTER TABLE persons ADD CONSTRAINT persons_creditor_external_ref_key
    UNIQUE (creditor_id, external_ref);
