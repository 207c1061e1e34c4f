"""The allocation service assembled from its parts."""

from contracts import Topics
from services.allocation import api, deadline_sweep, handlers, store
from services.shared.runtime import ServiceSpec

SPEC = ServiceSpec(
    name="allocation",
    metadata=store.metadata,
    dispatcher=handlers.dispatcher,
    consumes=handlers.CONSUMES,
    event_topic=Topics.ALLOCATION_EVENTS,
    routes=api.routes,
    tasks=[deadline_sweep.run],  # DL02
)
