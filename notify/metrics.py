"""The notification metric family (listed in docs/operations.md, "Metrics")."""

from prometheus_client import Counter

NOTIFICATIONS = Counter(
    "baton_notifications",
    "Tries to deliver a notification, by event and outcome (sent, retry, failed).",
    ["event", "outcome"],
)
