"""Daily check-in: one per business day in the brand's time zone, with a streak bonus."""
