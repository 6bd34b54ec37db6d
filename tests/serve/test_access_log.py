"""The access log: a JSON line per request, written in batches of whole lines, switchable."""

from __future__ import annotations

import asyncio
import json
import os
import select

import pytest
from starlette.testclient import TestClient

from mirror_core.layout import RepoRef
from mirror_core.settings import Settings
from mirror_core.store import Store
from serve import access_log
from serve.access_log import AccessLog
from serve.app import create_app
from serve.config import load_serve_settings
from tests.bucket import publish


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"time"')]


@pytest.mark.parametrize("enabled", [True, False])
def test_requests_are_logged_as_json_lines(enabled: bool, bucket_settings: Settings, store: Store, capfd) -> None:
    publish(store, RepoRef.parse("org/model"), {"config.json": b'{"model_type": "bert"}\n'})
    settings = load_serve_settings(s3=bucket_settings.s3, access_log=enabled)
    with TestClient(create_app(settings), base_url="http://mirror.test") as client:
        assert client.head("/org/model/resolve/main/config.json").status_code == 200
        assert client.get("/org/model/resolve/main/config.json").status_code == 200
        assert client.get('/org/model/resolve/main/no"such\\file?x=1').status_code == 404
        assert client.get("/healthz").status_code == 200
    lines = _lines(capfd.readouterr().err)  # written when the app shut down, not line by line
    if not enabled:
        assert lines == []
        return
    assert [(x["method"], x["status"], x["bytes"]) for x in lines] == [
        ("HEAD", 200, 0), ("GET", 200, 23), ("GET", 404, lines[2]["bytes"]), ("GET", 200, lines[3]["bytes"])]
    assert lines[0]["path"] == "/org/model/resolve/main/config.json"
    assert lines[2]["path"].endswith("?x=1") and "such" in lines[2]["path"]
    assert all(x["time"].endswith("Z") and x["ms"] >= 0 and x["client"] for x in lines)


def test_batches_are_whole_lines_within_pipe_buf(monkeypatch) -> None:
    """Workers share one stderr pipe: a write of whole lines <= PIPE_BUF is never split by another's."""
    writes: list[bytes] = []
    monkeypatch.setattr(access_log.os, "write", lambda fd, data: writes.append(bytes(data)) or len(data))
    scope = {"type": "http", "method": "GET", "path": "/x", "raw_path": b"/x" * 60, "query_string": b"",
             "client": ("10.0.0.1", 1)}

    async def run() -> None:
        log = AccessLog(fd=99, max_lines=10_000)
        for _ in range(500):
            log.add(scope, 200, 1, 0.001)
        log.flush()

    asyncio.run(run())
    assert len(writes) > 1 and all(len(w) <= select.PIPE_BUF and w.endswith(b"\n") for w in writes)
    assert sum(w.count(b"\n") for w in writes) == 500


def test_lines_go_out_within_the_interval_without_more_traffic() -> None:
    read, write = os.pipe()
    raw = b'/a"b\\c\x01\xff'  # whatever bytes a client put in its request line stay one JSON string

    async def run() -> None:
        log = AccessLog(fd=write, interval=0.05)
        log.add({"type": "http", "method": "HEAD", "path": "/a", "raw_path": raw, "client": None}, 204, 0, 0.0)
        await asyncio.sleep(0.3)  # no flush call, no second request

    asyncio.run(run())
    os.close(write)
    with os.fdopen(read) as f:
        (line,) = _lines(f.read())
    assert line["status"] == 204 and line["path"] == raw.decode("latin-1") and line["client"] == "-"
