-- Numbers added in bulk (a lead import adds hundreds of thousands) forget their persons'
-- resolved zones once per statement, through the transition table, instead of once per row.
DROP TRIGGER phone_numbers_zone_inserted ON phone_numbers;

CREATE FUNCTION person_zones_forget_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM person_zones WHERE person_id IN (SELECT person_id FROM inserted);
    RETURN NULL;
END
$$;
CREATE TRIGGER phone_numbers_zone_inserted AFTER INSERT ON phone_numbers
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION person_zones_forget_inserted();
