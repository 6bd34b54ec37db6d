"""`hubmirror serve --workers 2`: `/metrics` sums every worker, from a directory the launcher cleaned."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.mmap_dict import MmapedDict

from mirror_core.layout import RepoRef
from mirror_core.settings import Settings
from mirror_core.store import Store
from serve.metrics import LATENCY, Tally
from tests.bucket import publish
from tests.serve.server import ServeProcess, start_serve

HEAD_OK = 'hubmirror_serve_requests_total{method="HEAD",route="resolve",status="200"}'


def _requests_per_worker(metrics_dir: Path) -> list[float]:
    """Requests each worker process has counted (one counter file per worker PID)."""
    counts = []
    for path in metrics_dir.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        counts.append(sum(value for key, value, *_ in values if "hubmirror_serve_requests_total" in key))
    return counts


def _workers_that_answered(metrics_dir: Path) -> int:
    return sum(count > 0 for count in _requests_per_worker(metrics_dir))


def _scraped_heads(text: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(HEAD_OK))


def _worker_env(serve: ServeProcess, name: str) -> str | None:
    """A variable as the uvicorn workers (children of the launcher) see it."""
    for child in Path(f"/proc/{serve.pid}/task/{serve.pid}/children").read_text().split():
        for item in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
            key, _, value = item.decode().partition("=")
            if key == name and "spawn_main" in Path(f"/proc/{child}/cmdline").read_text():
                return value
    return None


def _check_summed(serve: ServeProcess, metrics_dir: Path) -> None:
    url = f"{serve.url}/org/model/resolve/main/config.json"
    sent = 0
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(16) as pool:
        # Fresh connections until both workers have answered some: only then can a scrape that
        # reaches one worker miss the other's counts.
        while _workers_that_answered(metrics_dir) < 2:
            assert time.monotonic() < deadline, "the second worker never answered"
            statuses = list(pool.map(lambda _: httpx.head(url, timeout=10).status_code, range(16)))
            assert statuses == [200] * 16
            sent += 16
    # Each worker applies its tally within a second; from then on, whichever worker answers the
    # scrape reports every worker's requests.
    deadline = time.monotonic() + 5
    while _scraped_heads(httpx.get(f"{serve.url}/metrics", timeout=10).text) != sent:
        assert time.monotonic() < deadline, "a worker's requests never reached /metrics"
        time.sleep(0.2)
    for _ in range(6):
        assert _scraped_heads(httpx.get(f"{serve.url}/metrics", timeout=10).text) == sent


@pytest.mark.parametrize("chosen", [True, False], ids=["operator-dir", "launcher-dir"])
def test_metrics_are_summed_across_workers(chosen: bool, bucket_settings: Settings, store: Store,
                                           tmp_path: Path) -> None:
    publish(store, RepoRef.parse("org/model"), {"config.json": b'{"model_type": "bert"}\n'})
    env: dict[str, str] = {}
    if chosen:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prometheus")
        (tmp_path / "prometheus").mkdir()
        stale = tmp_path / "prometheus" / "counter_4242.db"
        stale.write_bytes(b"left by an earlier run")  # counted (or unreadable) if the launcher kept it
    serve = start_serve(bucket_settings, workers=2, extra_env=env)
    try:
        seen = _worker_env(serve, "PROMETHEUS_MULTIPROC_DIR")
        assert seen is not None, "the launcher gave the workers no PROMETHEUS_MULTIPROC_DIR"
        metrics_dir = Path(seen)
        if chosen:
            assert metrics_dir == tmp_path / "prometheus" and not stale.exists()
        _check_summed(serve, metrics_dir)
    finally:
        serve.stop()
    assert metrics_dir.exists() == chosen  # a directory the launcher made is its own to remove


def test_tally_applies_what_observe_would_have() -> None:
    """Batched latencies land in the same buckets, sum and count as one observe() per request."""
    registry = CollectorRegistry()
    bounds = LATENCY._upper_bounds[:-1]
    direct, batched = (Histogram(f"h_{n}", "h", buckets=bounds, registry=registry) for n in ("direct", "batched"))
    samples = [0.0, 0.0005, 0.0007, 0.001, 0.003, 0.3, 7.0, 11.0] + bounds
    tally = Tally()
    for seconds in samples:
        direct.observe(seconds)
        tally.observe(batched, seconds)
    tally.apply()
    tally.apply()  # nothing pending: applies nothing twice

    def values(name: str) -> list[tuple[str, str, float]]:
        (metric,) = [m for m in registry.collect() if m.name == name]
        return [(s.name.removeprefix(name), s.labels.get("le", ""), s.value) for s in metric.samples
                if not s.name.endswith("_created")]

    assert values("h_direct") == values("h_batched")
    assert dict((le, v) for kind, le, v in values("h_batched") if kind == "_bucket")["+Inf"] == len(samples)


def _listening_sockets(port: int) -> int:
    """TCP sockets in LISTEN state on `port` (Linux /proc/net/tcp: st 0A)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A" for line in lines)


def test_a_burst_of_connections_is_spread_over_the_workers(bucket_settings: Settings, store: Store,
                                                           tmp_path: Path) -> None:
    """With one shared listening socket the worker that wakes first took a whole burst (all 32 bench
    clients on one of two workers); a socket per worker (SO_REUSEPORT) lets the kernel spread them."""
    publish(store, RepoRef.parse("org/model"), {"config.json": b"{}"})
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    serve = start_serve(bucket_settings, workers=2, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    host, port = serve.url.removeprefix("http://").split(":")
    request = f"HEAD /org/model/resolve/main/config.json HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    async def burst(n: int) -> None:
        connections = await asyncio.gather(*(asyncio.open_connection(host, int(port)) for _ in range(n)))
        for _, writer in connections:
            writer.write(request)
        heads = await asyncio.gather(*(reader.readuntil(b"\r\n\r\n") for reader, _ in connections))
        assert all(head.startswith(b"HTTP/1.1 200") for head in heads)
        for _, writer in connections:
            writer.close()

    try:
        deadline = time.monotonic() + 30
        while _listening_sockets(int(port)) < 2:  # one per worker once both started (a shared socket: one)
            assert time.monotonic() < deadline, "the workers do not listen on sockets of their own"
            time.sleep(0.2)
        asyncio.run(burst(64))
        deadline = time.monotonic() + 5
        while sum(_requests_per_worker(metrics_dir)) < 64:  # tallies reach the files within a second
            assert time.monotonic() < deadline
            time.sleep(0.2)
        counts = sorted(_requests_per_worker(metrics_dir))
        assert len(counts) == 2 and counts[0] >= 12, counts  # an even split is 32/32; 12 is ~5 sigma off
    finally:
        serve.stop()
