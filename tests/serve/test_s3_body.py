"""S3Body: its event-loop socket path and its worker-thread path read the same bytes from a real
SeaweedFS, and a body that stalls half-way ends in an error within the read timeout, not in a hang."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator

import anyio
import pytest
import urllib3

from mirror_core.store import Store
from serve.s3_body import S3Body

CHUNK = 1024 * 1024
BODY = os.urandom(3 * CHUNK + 17)


async def _read_all(source: S3Body) -> bytes:
    out = bytearray()
    buffer = memoryview(bytearray(CHUNK))
    try:
        while n := await source.fill(buffer):
            out += buffer[:n]
    finally:
        source.close()
    return bytes(out)


@pytest.mark.parametrize("on_loop", [True, False], ids=["socket-on-loop", "urllib3-in-thread"])
def test_both_paths_read_the_stored_bytes(store: Store, on_loop: bool) -> None:
    store.put_bytes("blobs/x", BODY)
    source = S3Body(store.open("blobs/x"), anyio.CapacityLimiter(2))
    if on_loop:
        source.take_socket(CHUNK)
        assert source.sock is not None  # plain TCP with a Content-Length: the loop reads the socket
    assert asyncio.run(_read_all(source)) == BODY


def test_a_small_body_stays_with_urllib3(store: Store) -> None:
    store.put_bytes("blobs/small", BODY[:CHUNK])
    source = S3Body(store.open("blobs/small"), anyio.CapacityLimiter(2))
    source.take_socket(CHUNK)
    assert source.sock is None
    assert asyncio.run(_read_all(source)) == BODY[:CHUNK]


@pytest.fixture
def stalling_s3() -> Iterator[str]:
    """Answers a GET with a 10 MiB Content-Length, sends 2 MiB of it, then holds the connection silent."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (10 * CHUNK) + b"x" * (2 * CHUNK))
            done.wait(30)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/bucket/key"
    done.set()
    thread.join(5)
    server.close()


def test_a_stalled_body_times_out(stalling_s3: str) -> None:
    with urllib3.PoolManager(timeout=urllib3.Timeout(connect=2, read=1)) as pool:
        source = S3Body(pool.request("GET", stalling_s3, preload_content=False), anyio.CapacityLimiter(2))
        source.take_socket(CHUNK)
        assert source.sock is not None and source.timeout == 1
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            asyncio.run(_read_all(source))
        assert time.monotonic() - started < 5
