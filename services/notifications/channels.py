"""The outbound channels: e-mail over SMTP (aiosmtplib) and webhooks (HTTP POST signed with
HMAC-SHA256). Each message carries an identifier derived from its delivery id (the e-mail's
Message-ID, the webhook's Idempotency-Key header), so a receiver can recognise a resend."""

from __future__ import annotations

import hashlib
import hmac
import json
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from services.notifications.settings import DeliverySettings, SmtpSettings

SIGNATURE_HEADER = "X-Casework-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
KIND_HEADER = "X-Casework-Notification"


class DeliveryError(Exception):
    """A send that did not succeed; the reason goes into NotificationFailed."""


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=<hex HMAC-SHA256 of the body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def message_id(delivery_id: Any, domain: str) -> str:
    return f"<{delivery_id}@{domain}>"


def webhook_body(row: Any) -> bytes:
    return json.dumps(
        {
            "notification_id": str(row.delivery_id),
            "kind": row.kind,
            "rule": row.rule,
            "subject": row.subject,
            "body": row.body,
            "data": row.data,
            "created_at": row.created_at.isoformat(),
        },
        sort_keys=True,
    ).encode()


class Channels:
    def __init__(self, smtp: SmtpSettings, delivery: DeliverySettings) -> None:
        self.smtp = smtp
        self._http = httpx.AsyncClient(timeout=delivery.webhook_timeout_seconds)

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, row: Any, secret: str | None) -> None:
        if row.channel == "email":
            await self.send_email(row)
        elif row.channel == "webhook":
            await self.post_webhook(row, secret)
        else:
            raise DeliveryError(f"no sender for channel {row.channel!r}")

    async def send_email(self, row: Any) -> None:
        message = EmailMessage()
        message["From"] = self.smtp.sender
        message["To"] = row.target
        message["Subject"] = row.subject
        message["Message-ID"] = message_id(row.delivery_id, self.smtp.message_id_domain)
        message["X-Casework-Rule"] = row.rule
        message.set_content(row.body)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.smtp.host,
                port=self.smtp.port,
                username=self.smtp.username,
                password=self.smtp.password,
                start_tls=self.smtp.start_tls,
                timeout=self.smtp.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp: {exc!r}") from exc

    async def post_webhook(self, row: Any, secret: str | None) -> None:
        if secret is None:
            raise DeliveryError(f"webhook {row.recipient_id} is no longer registered")
        body = webhook_body(row)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body),
            IDEMPOTENCY_HEADER: str(row.delivery_id),
            KIND_HEADER: row.kind,
        }
        try:
            response = await self._http.post(row.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {exc!r}") from exc
        if not response.is_success:
            raise DeliveryError(f"webhook answered {response.status_code}")
