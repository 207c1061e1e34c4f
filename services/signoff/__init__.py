"""Sign-off: requests, next actions, complete or return, finish (SO rules)."""
