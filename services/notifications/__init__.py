"""Notifications: who is told what (NT01-NT06), on which channel (in-app inbox, e-mail over
SMTP, signed webhooks), exactly once per recipient and channel (NT07), with durable reminders
(NT04, NT05).

Consumes allocation.events, signoff.events, access.events (recipients come from its own
projections: the directory, preferences, webhook registrations) and notifications.commands;
emits NotificationSent / Failed / Parked on notifications.events. The precise delivery
guarantee, including the one window SMTP and HTTP cannot close, is in `worker`'s docstring."""
