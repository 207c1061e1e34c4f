"""Prometheus metrics every service exposes on /metrics."""

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("casework_messages_consumed_total", "Records read from Kafka", ["topic"])
APPLIED = Counter("casework_messages_applied_total", "Messages applied", ["type"])
DUPLICATES = Counter("casework_messages_duplicate_total", "Redeliveries skipped by the inbox")
REJECTED = Counter("casework_commands_rejected_total", "Commands rejected", ["rule"])
DEAD_LETTERED = Counter("casework_messages_dead_lettered_total", "Records sent to a DLQ", ["topic"])
PUBLISHED = Counter("casework_outbox_published_total", "Outbox records published")
OUTBOX_LAG = Gauge("casework_outbox_lag", "Outbox records awaiting publication at last relay pass")
BATCH_SECONDS = Histogram(
    "casework_batch_seconds",
    "Time to apply one fetched batch in one transaction",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
