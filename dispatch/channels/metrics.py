"""What the operator watches of the ladder: attempts by channel and outcome, receipts by channel
and how long after the alert they came (the figure that says whether phones in pockets wake)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter(
    "alert_attempts_total",
    "Tries to reach a phone about an alert, by channel and outcome",
    ["channel", "outcome"],
)
RECEIPTS = Histogram(
    "alert_receipt_seconds",
    "Seconds from an alert to the phone's receipt (or answer), by the channel that reached it",
    ["channel"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120),
)
