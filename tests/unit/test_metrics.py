"""Garbage-collection pauses are timed: a stalled worker must be visible in /metrics and the log."""

from __future__ import annotations

import gc

from core.metrics import GC_PAUSE, watch_gc


def _count(generation: str) -> float:
    for metric in GC_PAUSE.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels["generation"] == generation:
                return sample.value
    return 0.0


def test_every_full_collection_is_timed_once_even_when_watched_twice() -> None:
    hooks = list(gc.callbacks)
    try:
        watch_gc()
        watch_gc()
        before = _count("2")
        gc.collect()
        gc.collect()
        assert _count("2") == before + 2
    finally:
        gc.callbacks[:] = hooks  # the test process's own collections are not the subject
