"""Test support: real infrastructure discovery, a command client and an event log."""
