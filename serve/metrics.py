"""Prometheus metrics of the read service (`/metrics`).

With several workers `hubmirror serve` sets PROMETHEUS_MULTIPROC_DIR (serve.launch), so every
worker's samples are aggregated whichever worker answers the scrape.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

REQUESTS = Counter("hubmirror_serve_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram("hubmirror_serve_request_seconds", "Time to the response headers", ["route"],
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
BYTES = Counter("hubmirror_serve_body_bytes_total", "File body bytes sent or redirected", ["mode"])
CACHE = Counter("hubmirror_serve_cache_total", "Cache lookups", ["cache", "result"])
INTEGRITY = Counter("hubmirror_serve_integrity_failures_total",
                    "Proxied bodies whose sha256 did not match the manifest (response aborted)")
ONDEMAND = Counter("hubmirror_serve_ondemand_triggers_total", "Airflow DAG triggers", ["dag", "result"])


class Tally:
    """Per-request counts summed in a dict and applied to prometheus_client at most a second later.

    In multiprocess mode every prometheus_client update is a locked write into an mmap'd file: the
    five a HEAD /resolve made cost ~10 µs, 15% of the request. Tallied, a request costs dict updates;
    a scrape applies its own worker's tally first, and the other workers' counts lag by at most
    `interval`. Used from the worker's event loop thread only (so no lock).
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.counts: dict[Any, float] = {}  # counter child -> amount
        self.latency: dict[Any, list[float]] = {}  # histogram child -> [sum, count per bucket...]
        self._timer: asyncio.TimerHandle | None = None

    def inc(self, child: Any, amount: float = 1.0) -> None:
        self.counts[child] = self.counts.get(child, 0.0) + amount
        if self._timer is None:
            self._arm()

    def observe(self, child: Any, seconds: float) -> None:
        tally = self.latency.get(child)
        if tally is None:
            tally = self.latency[child] = [0.0] * (len(_BOUNDS) + 1)
        tally[0] += seconds
        tally[1 + bisect.bisect_left(_BOUNDS, seconds)] += 1
        if self._timer is None:
            self._arm()

    def _arm(self) -> None:
        try:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.apply)
        except RuntimeError:  # no event loop (a script, a test): apply at once
            self.apply()

    def apply(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        counts, self.counts = self.counts, {}
        latency, self.latency = self.latency, {}
        for child, amount in counts.items():
            child.inc(amount)
        for child, tally in latency.items():
            # Histogram.observe() has no batch form; its sum and buckets are the values it would update.
            child._sum.inc(tally[0])
            for bucket, n in zip(child._buckets, tally[1:], strict=True):
                if n:
                    bucket.inc(n)


_BOUNDS = LATENCY._upper_bounds  # ends with +Inf
TALLY = Tally()



class Tallied:
    """A counter child whose `inc()` goes through the tally."""

    def __init__(self, child: Any) -> None:
        self.child = child

    def inc(self, amount: float = 1.0) -> None:
        TALLY.inc(self.child, amount)


# Labelled children resolved once: `.labels()` takes a lock and hashes its arguments on every call,
# which the HEAD path cannot afford.
REFS_HIT, REFS_MISS = Tallied(CACHE.labels("refs", "hit")), Tallied(CACHE.labels("refs", "miss"))
MANIFEST_HIT, MANIFEST_MISS = Tallied(CACHE.labels("manifest", "hit")), Tallied(CACHE.labels("manifest", "miss"))
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method, status)
    pair = _children.get(key)
    if pair is None:
        pair = _children[key] = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
    TALLY.inc(pair[0])
    TALLY.observe(pair[1], seconds)


async def metrics_endpoint(request: Request) -> Response:
    TALLY.apply()  # on the event loop thread, like every tally update
    data = await anyio.to_thread.run_sync(_exposition)
    return Response(data, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()
