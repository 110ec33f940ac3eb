"""The read side: views across contexts (member card, till look-up, member detail)."""
