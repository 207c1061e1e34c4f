"""The edge: the command API through which people's commands enter the platform (TR01, TR02)."""
