"""The sign-off service assembled from its parts."""

from contracts import Topics
from services.shared.runtime import ServiceSpec
from services.signoff import api, handlers, store

SPEC = ServiceSpec(
    name="signoff",
    metadata=store.metadata,
    dispatcher=handlers.dispatcher,
    consumes=handlers.CONSUMES,
    event_topic=Topics.SIGNOFF_EVENTS,
    routes=api.routes,
)
