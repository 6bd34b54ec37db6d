"""A corrupt body never reaches a client as good bytes; what serve may not fix itself it asks Airflow to.

Runs `hubmirror serve` on a bucket of its own (published by hand, then damaged) with a stand-in for the
Airflow REST API that records the DAG runs it is asked for.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from mirror_core.layout import RepoRef, blob_key
from mirror_core.settings import Settings
from mirror_core.store import Store
from tests.serve.handmade import publish
from tests.serve.server import ServeProcess, start_serve


class FakeAirflow(http.server.ThreadingHTTPServer):
    """POST /auth/token and POST /api/v2/dags/<id>/dagRuns, as AIRFLOW_NOTES.md §3 describes them."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict]] = []
        self.logins = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                if self.path == "/auth/token":
                    ok = body == {"username": "admin", "password": "pw"}
                    outer.logins += ok
                    self._answer(201 if ok else 401, {"access_token": "jwt"} if ok else {"detail": "bad"})
                elif self.path.startswith("/api/v2/dags/") and self.path.endswith("/dagRuns"):
                    if self.headers.get("authorization") != "Bearer jwt":
                        self._answer(401, {"detail": "no token"})
                        return
                    assert "logical_date" in body and body["logical_date"] is None
                    outer.runs.append((self.path.split("/")[4], body["conf"]))
                    self._answer(200, {"dag_run_id": f"manual__{len(outer.runs)}"})
                else:
                    self._answer(404, {})

            def _answer(self, status: int, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def airflow() -> Iterator[FakeAirflow]:
    server = FakeAirflow()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def served(bucket_settings: Settings, store: Store, airflow: FakeAirflow) -> Iterator[tuple[ServeProcess, dict]]:
    files = {"big.bin": os.urandom(5 * 1024 * 1024 + 3), "small.txt": b"small body\n"}
    publish(store, RepoRef.parse("org/model"), files, lfs={"big.bin"})
    handle = start_serve(bucket_settings, extra_env={
        "HUBMIRROR_SERVE_AIRFLOW_URL": airflow.url, "HUBMIRROR_SERVE_AIRFLOW_USERNAME": "admin",
        "HUBMIRROR_SERVE_AIRFLOW_PASSWORD": "pw"})
    yield handle, files
    handle.stop()


def _wait_for(predicate, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("name", ["big.bin", "small.txt"])
def test_corrupt_body_aborts_full_get(name: str, served, store: Store, airflow: FakeAirflow) -> None:
    import hashlib

    serve, files = served
    url = f"{serve.url}/org/model/resolve/main/{name}"
    assert httpx.get(url, timeout=30).content == files[name]  # intact: served whole
    good = files[name]
    bad = bytes([good[0] ^ 0xFF]) + good[1:]
    sha256 = hashlib.sha256(good).hexdigest()
    store.put_bytes(blob_key(sha256), bad)  # same length, other bytes
    with pytest.raises(httpx.HTTPError):  # RemoteProtocolError: the body ends short of Content-Length
        r = httpx.get(url, timeout=30)
        r.raise_for_status()
        assert r.content != bad
    assert _wait_for(lambda: ("hubmirror_verify", {"dry_run": False, "sha256": [sha256]}) in airflow.runs)
    metrics = httpx.get(f"{serve.url}/metrics").text
    assert "hubmirror_serve_integrity_failures_total 1.0" in metrics
    assert "body_integrity_failure" in serve.log()
    # A range read is not hashed (it cannot be): it returns the stored bytes, which is why full reads are.
    r = httpx.get(url, headers={"Range": "bytes=1-4"})
    assert r.status_code == 206 and r.content == bad[1:5]


def test_missing_repo_triggers_one_sync(served, airflow: FakeAirflow) -> None:
    serve, _ = served
    for _ in range(3):
        r = httpx.get(f"{serve.url}/api/models/org/not-yet-mirrored")
        assert (r.status_code, r.headers["x-error-code"]) == (401, "RepoNotFound")
    r = httpx.head(f"{serve.url}/datasets/org/ds-not-yet/resolve/main/README.md")
    assert r.headers["x-error-code"] == "RepoNotFound"
    expected = [("hubmirror_sync_repo", {"repo_id": "org/not-yet-mirrored", "repo_type": "model"}),
                ("hubmirror_sync_repo", {"repo_id": "org/ds-not-yet", "repo_type": "dataset"})]
    assert _wait_for(lambda: len(airflow.runs) >= 2)
    time.sleep(0.3)
    assert sorted(airflow.runs, key=str) == sorted(expected, key=str)  # rate-limited: one run per repo
    assert airflow.logins == 1


def test_bad_request_paths_are_clean(served) -> None:
    serve, _ = served
    for path in ("/org/model/resolve/main/..%2F..%2Fetc%2Fpasswd", "/api/models/org/model/tree/main/%00",
                 "/api/models/../../x", "/org/model/resolve/main/", "/api/models/a/b/c/d/e"):
        r = httpx.get(serve.url + path)
        assert 400 <= r.status_code < 500 and r.headers.get("x-error-code"), (path, r.status_code)
    assert "Traceback" not in serve.log()
