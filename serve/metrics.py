"""Prometheus metrics of the read service (`/metrics`).

With several uvicorn workers set PROMETHEUS_MULTIPROC_DIR so that every worker's samples are
aggregated; without it each scrape sees the worker that answered.
"""

from __future__ import annotations

import os
from typing import Any

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

# Labelled children resolved once: `.labels()` takes a lock and hashes its arguments on every call,
# which the HEAD path cannot afford.
REFS_HIT, REFS_MISS = CACHE.labels("refs", "hit"), CACHE.labels("refs", "miss")
MANIFEST_HIT, MANIFEST_MISS = CACHE.labels("manifest", "hit"), CACHE.labels("manifest", "miss")
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method, status)
    pair = _children.get(key)
    if pair is None:
        pair = _children[key] = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
    pair[0].inc()
    pair[1].observe(seconds)


def metrics_endpoint(request: Request) -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest()
    return Response(data, headers={"Content-Type": CONTENT_TYPE_LATEST})
