"""The outbound channels: e-mail over SMTP (aiosmtplib) and webhooks (HTTP POST). Each message
carries an identifier derived from its delivery id (the e-mail's Message-ID, the webhook's
Idempotency-Key header), so a receiver can recognise a resend.

Webhooks (TR06)
---------------
Every POST carries a JSON body and these headers:

    Casework-Timestamp: <unix seconds, when it was sent>
    Casework-Signature: v1=<hex HMAC-SHA256(secret, "<Casework-Timestamp>.<body>")>
    Idempotency-Key: <the notification's id, the same on every resend>
    X-Casework-Notification: <the notification's kind>

A receiver recomputes the HMAC-SHA256 with the registered secret over the timestamp header's
value, a full stop and the raw body bytes, compares it in constant time with the `v1=` value,
and rejects a timestamp more than 5 minutes (`REPLAY_WINDOW_SECONDS`) away from its own clock.
Keeping the Idempotency-Keys it has seen for at least that window, it accepts no captured
request twice; a genuine resend has a new timestamp and the same key. `verify_signature` is
that check.

Before each POST the target is checked again against the allow-list, its host is resolved and
every address it resolves to is checked: loopback, private, link-local, multicast, reserved,
unspecified and other non-global addresses are refused unless inside an explicitly allowed
network (`CASEWORK_WEBHOOK_ALLOWED_ADDRESSES`). The request then goes to the address that was
checked (the Host header and the TLS server name stay the URL's), so a second DNS answer cannot
send it elsewhere (DNS rebinding). Redirects are not followed, proxies named by the environment
are not used, connections are not reused (a TLS session stays bound to its server name) and the
answer's body is not read. A refused target parks the delivery at once with the reason; no
request is made."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from services.notifications.domain import IPAddress, Target, WebhookPolicy
from services.notifications.settings import DeliverySettings, SmtpSettings
from services.notifications.store import WebhookTarget
from services.shared.rules import RuleViolation

SIGNATURE_HEADER = "Casework-Signature"
TIMESTAMP_HEADER = "Casework-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
KIND_HEADER = "X-Casework-Notification"
SIGNATURE_VERSION = "v1"
REPLAY_WINDOW_SECONDS = 300

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


class DeliveryError(Exception):
    """A send that did not succeed; the reason goes into NotificationFailed (and it is tried
    again later)."""


class DeliveryRefused(DeliveryError):
    """A send that must not be made (TR06) or cannot be any more (the webhook was removed):
    parked at once with the reason, not retried."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature header's value: `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    window: float = REPLAY_WINDOW_SECONDS,
) -> None:
    """What a receiver checks; raises ValueError saying why a request is not to be trusted.
    `signature` may list several comma-separated values (one per secret while rotating)."""
    if not timestamp or not timestamp.isdigit():
        raise ValueError(f"no valid {TIMESTAMP_HEADER} header")
    if abs(now - int(timestamp)) > window:
        raise ValueError(f"{TIMESTAMP_HEADER} is more than {window:.0f} seconds away")
    expected = sign(secret, timestamp, body)
    offered = [s.strip() for s in (signature or "").split(",")]
    if not any(hmac.compare_digest(expected, s) for s in offered):
        raise ValueError(f"{SIGNATURE_HEADER} does not match the timestamp and the body")


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


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (TCP), in the resolver's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


class Channels:
    def __init__(
        self,
        smtp: SmtpSettings,
        delivery: DeliverySettings,
        webhooks: WebhookPolicy | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.smtp = smtp
        self.webhooks = webhooks or WebhookPolicy()  # by default no target is allowed
        self._timeout = delivery.webhook_timeout_seconds
        self._resolve = resolver
        self._http = httpx.AsyncClient(
            timeout=delivery.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, row: Any, hook: WebhookTarget | None, now: datetime) -> None:
        """Sends one delivery; `hook` is the webhook's current registration (webhook rows)."""
        if row.channel == "email":
            await self.send_email(row)
        elif row.channel == "webhook":
            await self.post_webhook(row, hook, now)
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

    async def post_webhook(self, row: Any, hook: WebhookTarget | None, now: datetime) -> None:
        if hook is None:
            raise DeliveryRefused(f"webhook {row.recipient_id} is no longer registered")
        try:
            target = self.webhooks.check_url(hook.url)
        except RuleViolation as refused:
            raise DeliveryRefused(f"{refused.rule}: {refused.reason}") from None
        address = await self.checked_address(target)
        body = webhook_body(row)
        timestamp = int(now.timestamp())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(hook.secret, timestamp, body),
            IDEMPOTENCY_HEADER: str(row.delivery_id),
            KIND_HEADER: row.kind,
        }
        # TLS: the certificate is checked against the URL's host, not the address.
        tls = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            async with asyncio.timeout(self._timeout):
                request = self._http.build_request(
                    "POST", target.url_at(address), content=body, headers=headers, extensions=tls
                )
                response = await self._http.send(request, stream=True)
                await response.aclose()  # the answer's status is all we need
        except (httpx.HTTPError, TimeoutError) as exc:
            raise DeliveryError(f"webhook: {exc!r}") from exc
        if response.is_redirect:
            raise DeliveryError(
                f"webhook answered {response.status_code}: redirects are not followed"
            )
        if not response.is_success:
            raise DeliveryError(f"webhook answered {response.status_code}")

    async def checked_address(self, target: Target) -> IPAddress:
        """TR06: the address to connect to, once every address the host resolves to has been
        allowed (an IP address in the URL is its own answer)."""
        if target.literal is not None:
            addresses = [target.literal]
        else:
            try:
                async with asyncio.timeout(self._timeout):
                    addresses = await self._resolve(target.host, target.port)
            except (OSError, TimeoutError, ValueError) as exc:
                reason = f"webhook host {target.host} does not resolve: {exc!r}"
                raise DeliveryError(reason) from exc
            if not addresses:
                raise DeliveryError(f"webhook host {target.host} resolves to no address")
        for address in addresses:
            try:
                self.webhooks.check_address(target, address)
            except RuleViolation as refused:
                raise DeliveryRefused(f"{refused.rule}: {refused.reason}") from None
        return addresses[0]
