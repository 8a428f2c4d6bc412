-- A trunk's channels: how many calls its carrier account carries at once. A campaign's own
-- `max_lines` only counts its own calls; campaigns sharing one trunk (on any node, through any
-- Asterisk) would together dial past what the account takes, and the carrier refuses the rest
-- (SIP 503: the debtor's phone never rings, the lead's try is spent). A trunk named here is
-- shared: every claim for a campaign dialing through it locks this row, counts the attempts
-- not yet final of all those campaigns and claims no more than the channels left. A trunk
-- not named here has no limit but its campaigns' `max_lines`.
CREATE TABLE trunks (
    -- As campaigns.trunk says it: an Asterisk channel technology and endpoint.
    name         text PRIMARY KEY
                 CHECK (name ~ '^[A-Za-z][A-Za-z0-9_]{0,31}(/[A-Za-z0-9_.:+=~-]{1,95})?$'),
    max_channels integer NOT NULL CHECK (max_channels BETWEEN 0 AND 100000),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
