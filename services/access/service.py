"""The access service assembled from its parts."""

from contracts import Topics
from services.access import api, handlers, scheduler, store
from services.shared.runtime import ServiceSpec

SPEC = ServiceSpec(
    name="access",
    metadata=store.metadata,
    dispatcher=handlers.dispatcher,
    consumes=handlers.CONSUMES,
    event_topic=Topics.ACCESS_EVENTS,
    routes=api.routes,
    tasks=[scheduler.run],
)
