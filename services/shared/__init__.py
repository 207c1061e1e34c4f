"""Plumbing shared by every service: settings, database, outbox, inbox, batch consumption,
actor tokens, health and metrics. Nothing here knows a business rule."""
