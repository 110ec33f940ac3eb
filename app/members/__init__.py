"""Members: identities, profile, the member card, merging."""
