"""The dialer: campaigns, leads, pacing, call attempts, agents, retries."""
