"""An S3 endpoint that accepts connections and never answers: serve says 503 within seconds, healthz stays up.

The endpoint is a real TCP listener on 127.0.0.1 that accepts and then reads nothing and writes nothing.
"""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from mirror_core.settings import Settings
from tests.serve.server import start_serve

ROUTES = [("HEAD", "/org/model/resolve/main/config.json"), ("GET", "/org/model/resolve/main/config.json"),
          ("GET", "/api/models/org/model"), ("GET", "/api/models/org/model/tree/main"),
          ("POST", "/api/models/org/model/paths-info/main"), ("GET", "/api/models/org/model/refs"),
          ("GET", "/readyz"), ("GET", "/api/models")]


@pytest.fixture
def hanging_s3() -> Iterator[str]:
    """Accepts every connection and holds it open, silent, until the test ends."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def test_hanging_s3_is_a_quick_503_and_healthz_stays_up(bucket_settings: Settings, hanging_s3: str) -> None:
    settings = bucket_settings.model_copy(update={"s3_endpoint": hanging_s3})
    serve = start_serve(settings, workers=1)
    try:
        def timed(method: str, path: str) -> tuple[str, int, float, str]:
            started = time.monotonic()
            r = httpx.request(method, serve.url + path, timeout=30, data={"paths": "config.json"}
                              if method == "POST" else None)
            return path, r.status_code, time.monotonic() - started, r.text

        with concurrent.futures.ThreadPoolExecutor(len(ROUTES)) as pool:
            pending = [pool.submit(timed, m, p) for m, p in ROUTES]
            time.sleep(1.0)  # every request above is now waiting on the silent S3
            started = time.monotonic()
            assert httpx.get(serve.url + "/healthz", timeout=5).status_code == 200
            assert time.monotonic() - started < 1.0
            results = [f.result() for f in pending]
        print({path: (status, round(seconds, 2)) for path, status, seconds, _ in results})
        for path, status, seconds, text in results:
            assert status == 503, (path, status, text)
            assert seconds < 8, (path, seconds)
            assert hanging_s3.split("//")[1] not in text and settings.s3_bucket not in text, (path, text)
        assert "did not answer" in serve.log() or "timed out" in serve.log().lower()  # the detail is in the log
    finally:
        serve.stop()
