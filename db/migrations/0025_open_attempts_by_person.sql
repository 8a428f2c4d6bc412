-- One call at a time to a person: the claim skips the leads of a person who has an attempt not
-- yet final, in any campaign (two debts, two creditors, two campaigns: never two calls at once).
-- The attempts in flight are a sliver of the table; this index holds only them.
CREATE INDEX call_attempts_open_person_idx ON call_attempts (person_id) WHERE state <> 'final';
