"""Small helpers shared by the benchmark modules: timing statistics and Markdown tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; samples need not be sorted."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def time_calls(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of `repeat` calls of `fn`."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def app_env(database_url: str, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of an app server a benchmark starts: its stores and Redis namespace, no demo,
    quiet logs, and rate limits far above any benchmark's load (every request comes from one
    address; what the limiter itself costs is `bench_limits`' question). `extra` adds or overrides."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DISPATCH_REDIS_PREFIX": prefix,
        "DISPATCH_DEMO": "0",
        "DISPATCH_LOG_LEVEL": "WARNING",
        "DISPATCH_RATE_LIMIT_PER_ADDRESS": "100000000/minute",
        "DISPATCH_RATE_LIMIT_PER_TOKEN": "100000000/minute",
        **extra,
    }
