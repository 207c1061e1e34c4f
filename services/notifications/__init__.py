"""Notifications: who is told what, on which channel, exactly once (NT rules)."""
