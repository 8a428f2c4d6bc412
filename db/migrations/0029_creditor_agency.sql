-- The collection agency (Mexico: "despacho de cobranza", registered in CONDUSEF's REDECO) that
-- collects for this creditor: {name, address, phone, email, responsible}. NULL: the creditor
-- collects in-house. At the first contact with a Mexican debtor the agency must say who it is
-- (name, the collector's name, address, phone, the persons responsible), the financial entity
-- that granted the credit and the contract; the screen pop gives the agent those words.
ALTER TABLE creditors ADD COLUMN agency jsonb
    CHECK (agency IS NULL OR jsonb_typeof(agency) = 'object');
