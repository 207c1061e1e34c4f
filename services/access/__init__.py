"""Access: positions, secondary access with P30 records, reviews, the emergency path and the
removal saga (AC01-AC19)."""
