"""Points: a ledger of immutable entries over lots that expire, and a balance that agrees."""
