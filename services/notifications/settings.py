"""Notifications' own settings: the SMTP server (prefix CASEWORK_SMTP_) and the delivery worker
(prefix CASEWORK_NOTIFY_); the webhook policy comes from the shared settings (CASEWORK_WEBHOOK_)."""

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.notifications.domain import RetryPolicy, WebhookPolicy
from services.shared.settings import Settings


class SmtpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASEWORK_SMTP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "notifications@casework.local"
    username: str | None = None
    password: str | None = None
    start_tls: bool = False
    timeout_seconds: float = 10.0
    message_id_domain: str = "casework.local"


class DeliverySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASEWORK_NOTIFY_", extra="ignore")

    poll_seconds: float = 0.5
    batch_size: int = 50
    max_attempts: int = 8
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    webhook_timeout_seconds: float = 10.0
    reminder_poll_seconds: float = 30.0

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.backoff_base_seconds, self.backoff_max_seconds)


def webhook_policy(settings: Settings) -> WebhookPolicy:
    """TR06: the webhook targets and non-public addresses the shared settings allow
    (`CASEWORK_WEBHOOK_ALLOWED_TARGETS`, `CASEWORK_WEBHOOK_ALLOWED_ADDRESSES`); a malformed
    entry stops the service at start."""
    return WebhookPolicy.parse(settings.webhook_allowed_targets, settings.webhook_allowed_addresses)
