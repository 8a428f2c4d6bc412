-- Reg F's limited-content voicemail (12 CFR 1006.2(j)(1)) names "one or more natural persons
-- whom the consumer can contact": the creditor's contact (a real person or a consistent alias
-- agents answer to). Without one, a campaign's "limited" message is not played (fail closed).
ALTER TABLE creditors ADD COLUMN contact_name text
    CHECK (contact_name IS NULL OR length(btrim(contact_name)) BETWEEN 1 AND 100);
