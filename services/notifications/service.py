"""The notifications service assembled from its parts. `build_spec` takes the SMTP and delivery
settings and the shared settings the webhook policy (TR06) is read from (tests pass their own);
`SPEC` reads them from the environment, as the runtime does."""

from __future__ import annotations

from contracts import Topics
from services.notifications import api, handlers, store, worker
from services.notifications.settings import DeliverySettings, SmtpSettings, webhook_policy
from services.shared.runtime import ServiceSpec
from services.shared.settings import Settings


def build_spec(
    smtp: SmtpSettings | None = None,
    delivery: DeliverySettings | None = None,
    settings: Settings | None = None,
) -> ServiceSpec:
    smtp = smtp or SmtpSettings()
    delivery = delivery or DeliverySettings()
    webhooks = webhook_policy(settings or Settings(service_name="notifications"))
    return ServiceSpec(
        name="notifications",
        metadata=store.metadata,
        dispatcher=handlers.dispatcher_for(webhooks),
        consumes=handlers.CONSUMES,
        event_topic=Topics.NOTIFICATIONS_EVENTS,
        routes=api.routes,
        tasks=[worker.delivery_task(smtp, delivery, webhooks), worker.reminder_task(delivery)],
    )


SPEC = build_spec()
