-- A number a fax machine answered (AMD: MACHINE, AMDCAUSE FAX-...) is marked 'fax': never a
-- person on it, so lead selection (which dials 'active' numbers only: 0031) stops dialing it
-- for voice, and the person's next number is tried. Kept apart from 'disconnected' (the line is
-- in service; a fax could still be sent to it) and from 'invalid' (the number is valid).
-- The column's CHECK (0001, named phone_numbers_status_check by PostgreSQL) gets one more value.
-- NOT VALID, then VALIDATE: the check scans the table without blocking writes to it (0018).
-- The call attempt's new dispositions ('fax', 'intercept', 'sit_other') need nothing here:
-- call_attempts.disposition and leads.last_outcome have no CHECK.
ALTER TABLE phone_numbers DROP CONSTRAINT phone_numbers_status_check;
ALTER TABLE phone_numbers ADD CONSTRAINT phone_numbers_status_check
    CHECK (status IN ('active', 'invalid', 'wrong_party', 'disconnected', 'fax')) NOT VALID;
ALTER TABLE phone_numbers VALIDATE CONSTRAINT phone_numbers_status_check;
