"""Orders and refunds pushed by store systems; they earn and take back points."""
