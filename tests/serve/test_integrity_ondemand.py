"""A corrupt body never reaches a client as good bytes; what serve may not fix itself it asks Airflow to.

Runs `hubmirror serve` on a bucket of its own (published by hand, then damaged) with a stand-in for the
Airflow REST API that records the DAG runs it is asked for.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mirror_core.layout import RepoRef, blob_key
from mirror_core.settings import Settings
from mirror_core.store import Store
from tests.bucket import publish
from tests.serve.fake_airflow import FakeAirflow, airflow_env, wait_for
from tests.serve.server import ServeProcess, start_serve


@pytest.fixture
def served(request: pytest.FixtureRequest, bucket_settings: Settings, store: Store, airflow: FakeAirflow,
           tmp_path: Path) -> Iterator[tuple[ServeProcess, dict]]:
    files = {"big.bin": os.urandom(5 * 1024 * 1024 + 3), "small.txt": b"small body\n"}
    publish(store, RepoRef.parse("org/model"), files, lfs={"big.bin"})
    env = {**airflow_env(airflow), "HUBMIRROR_SERVE_RUNTIME_DIR": str(tmp_path),
           "HUBMIRROR_SERVE_VERIFY_FULL_GETS": getattr(request, "param", "fast")}
    handle = start_serve(bucket_settings, extra_env=env)
    yield handle, files
    handle.stop()


def _damage(store: Store, good: bytes) -> bytes:
    """Replace the stored body with other bytes of the same length; returns them."""
    bad = bytes([good[0] ^ 0xFF]) + good[1:]
    store.put_bytes(blob_key(hashlib.sha256(good).hexdigest()), bad)
    return bad


def _broken(url: str) -> bool:
    """Whether a full GET ends in a broken transfer (the body stops short of its Content-Length)."""
    try:
        httpx.get(url, timeout=30).raise_for_status()
    except httpx.HTTPError:
        return True
    return False


@pytest.mark.parametrize("served", ["fast", "sha256"], indirect=True)
@pytest.mark.parametrize("name", ["big.bin", "small.txt"])
def test_corrupt_body_aborts_full_get(name: str, served, store: Store, airflow: FakeAirflow) -> None:
    serve, files = served
    url = f"{serve.url}/org/model/resolve/main/{name}"
    assert httpx.get(url, timeout=30).content == files[name]  # intact: served whole
    bad = _damage(store, files[name])
    assert _broken(url)
    sha256 = hashlib.sha256(files[name]).hexdigest()
    assert wait_for(lambda: ("hubmirror_verify", {"dry_run": False, "sha256": [sha256]}) in airflow.runs)
    metrics = httpx.get(f"{serve.url}/metrics").text
    assert "hubmirror_serve_integrity_failures_total 1.0" in metrics
    assert "body_integrity_failure" in serve.log()
    # A range read is not hashed (it cannot be): it returns the stored bytes, which is why full reads are.
    r = httpx.get(url, headers={"Range": "bytes=1-4"})
    assert r.status_code == 206 and r.content == bad[1:5]


def test_anonymous_misses_trigger_nothing_by_default(served, airflow: FakeAirflow) -> None:
    """HUBMIRROR_SERVE_ONDEMAND_ANONYMOUS is false unless set: an unknown URL costs the mirror nothing."""
    serve, _ = served
    for _ in range(3):
        r = httpx.get(f"{serve.url}/api/models/org/not-yet-mirrored")
        assert (r.status_code, r.headers["x-error-code"]) == (401, "RepoNotFound")
    r = httpx.head(f"{serve.url}/datasets/org/ds-not-yet/resolve/main/README.md")
    assert r.headers["x-error-code"] == "RepoNotFound"
    time.sleep(0.5)
    assert airflow.runs == [] and airflow.logins == 0


def test_bad_request_paths_are_clean(served) -> None:
    serve, _ = served
    for path in ("/org/model/resolve/main/..%2F..%2Fetc%2Fpasswd", "/api/models/org/model/tree/main/%00",
                 "/api/models/../../x", "/org/model/resolve/main/", "/api/models/a/b/c/d/e"):
        r = httpx.get(serve.url + path)
        assert 400 <= r.status_code < 500 and r.headers.get("x-error-code"), (path, r.status_code)
    assert "Traceback" not in serve.log()


@pytest.mark.parametrize("name", ["big.bin", "small.txt"])
def test_fast_check_proves_with_sha256_then_catches_with_the_fingerprint(name: str, served, store: Store) -> None:
    """Mode `fast`: corruption is caught before any GET proved the body (sha256) and after (xxh3)."""
    serve, files = served
    url = f"{serve.url}/org/model/resolve/main/{name}"
    good = files[name]
    _damage(store, good)
    assert _broken(url)  # never proven: hashed with sha256, refused
    assert "sha256 mismatch" in serve.log()
    store.put_bytes(blob_key(hashlib.sha256(good).hexdigest()), good)  # repaired
    assert httpx.get(url, timeout=30).content == good  # proven now: its fingerprint is remembered
    _damage(store, good)
    assert _broken(url)
    assert "fingerprint mismatch" in serve.log()
    store.put_bytes(blob_key(hashlib.sha256(good).hexdigest()), good)
    assert httpx.get(url, timeout=30).content == good  # forgotten at the mismatch, proven again


@pytest.mark.parametrize("served", ["off"], indirect=True)
def test_unchecked_mode_serves_what_is_stored(served, store: Store) -> None:
    """`off` is what it says (the bench's baseline for what a check costs): the stored bytes go out."""
    serve, files = served
    bad = _damage(store, files["big.bin"])
    assert httpx.get(f"{serve.url}/org/model/resolve/main/big.bin", timeout=30).content == bad
