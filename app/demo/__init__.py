"""Demo data for a development database: the programme (tiers, points rules, tier policy)
and members with a history, all written through the contexts' own use cases and steps,
so that every balance agrees with its ledger. Like the CLI, it sits above every context."""
