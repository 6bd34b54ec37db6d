"""A private fake hub for the sync tests (they commit to it and inject faults) and settings per bucket."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hubmirror.embedded_s3 import EmbeddedS3
from mirror_core.settings import Settings
from mirror_core.store import Store
from tests.conftest import FAKEHUB_LARGE_SIZE, make_settings

PART = 5 * 1024 * 1024


@pytest.fixture(scope="package")
def own_hub() -> Iterator:
    """Our own fakehub process: commits made here never leak into other packages' expectations."""
    from hubmirror.demohub.server import start_fakehub

    data = Path(os.environ.get("HUBMIRROR_FAKEHUB_DATA", Path.home() / ".cache" / "hubmirror-fakehub"))
    handle = start_fakehub(data, large_size=FAKEHUB_LARGE_SIZE)
    yield handle
    handle.stop()


@pytest.fixture
def hub(own_hub):
    """The private fake hub with faults and counters cleared before and after the test."""
    own_hub.reset()
    yield own_hub
    own_hub.reset()


@pytest.fixture(autouse=True)
def no_leaked_buffers() -> Iterator[None]:
    """Every test of this package must give back every part buffer it borrowed (the memory cap)."""
    from mirror_core.transfer import buffers_in_use

    yield
    assert buffers_in_use() == 0


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make(s3_server: EmbeddedS3, hub) -> SettingsFactory:
    """Build settings on a fresh bucket pointing at the private hub; `token` picks a hub token (or None)."""

    def build(token: str | None = "service", bucket: str | None = None, selection: dict | None = None,
              **transfer) -> Settings:
        bucket = bucket or f"t-{uuid.uuid4().hex[:16]}"
        options = {"allowed_redirect_hosts": [hub.cdn_url.split("://", 1)[1]], "backoff_base": 0.02,
                   "max_wait": 2.0, "part_size": PART, "max_retries": 4, **transfer}
        settings = make_settings(s3_server, bucket, upstream_url=hub.url,
                                 upstream_token=hub.tokens[token] if token else None, transfer=options,
                                 selection=selection or {})
        Store(settings.s3).ensure_bucket()
        return settings

    return build


class Listener:
    """A loopback HTTP server standing for a foreign host: records what reaches it, answers 404."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.requests: list[dict] = []
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                seen.append({"path": self.path, "authorization": self.headers.get("authorization")})
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="listener", daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def host(self) -> str:
        return self.origin.split("://", 1)[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A foreign host on loopback that records whether a request (and a token) reached it."""
    handle = Listener()
    yield handle
    handle.stop()
