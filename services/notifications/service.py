"""The notifications service assembled from its parts. `build_spec` takes the SMTP and delivery
settings (tests pass their own); `SPEC` reads them from the environment."""

from __future__ import annotations

from contracts import Topics
from services.notifications import api, handlers, store, worker
from services.notifications.settings import DeliverySettings, SmtpSettings
from services.shared.runtime import ServiceSpec


def build_spec(
    smtp: SmtpSettings | None = None, delivery: DeliverySettings | None = None
) -> ServiceSpec:
    smtp = smtp or SmtpSettings()
    delivery = delivery or DeliverySettings()
    return ServiceSpec(
        name="notifications",
        metadata=store.metadata,
        dispatcher=handlers.dispatcher,
        consumes=handlers.CONSUMES,
        event_topic=Topics.NOTIFICATIONS_EVENTS,
        routes=api.routes,
        tasks=[worker.delivery_task(smtp, delivery), worker.reminder_task(delivery)],
    )


SPEC = build_spec()
