"""serve decides who may read a repo from what the sync published in refs.json, and fails closed.

Over a bucket published by hand the way the sync publishes (blobs, then the manifest, then refs.json in
one PUT), against the real SeaweedFS fixture.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid

from starlette.testclient import TestClient

from mirror_core.layout import RepoRef, refs_key
from mirror_core.manifest import Refs
from mirror_core.settings import Settings
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from serve.app import create_app
from serve.config import load_serve_settings
from tests.bucket import publish
from tests.conftest import make_settings
from tests.serve.test_app_handmade import TOKEN_ALL, make_client

GATED = RepoRef.parse("org/gated")
ALICE = {"Authorization": f"Bearer {TOKEN_ALL}"}


def _sha_of(repo: RepoRef, files: dict[str, bytes], seed: str) -> str:
    """The commit sha `publish` will give (it hashes repo, seed and paths), known before it lands."""
    return hashlib.sha1(f"{repo}:{seed}:{sorted(files)}".encode()).hexdigest()


def test_polling_an_unpublished_sha_while_it_lands_never_opens_a_gated_repo(bucket_settings: Settings,
                                                                            store: Store) -> None:
    publish(store, GATED, {"config.json": b'{"v": 1}'}, info={"gated": "manual"})
    files = {"config.json": b'{"v": 2}', "weights.bin": b"secret weights"}
    upcoming = _sha_of(GATED, files, "2")
    # Short refs TTL (serve sees the publish at once), long negative cache (the absence is remembered).
    client = make_client(bucket_settings, refs_ttl=0.05, missing_ttl=1.0)
    seen: list[tuple[str, int, str]] = []
    stop = threading.Event()

    def poll() -> None:
        for _ in range(2000):
            if stop.is_set():
                return
            for url in (f"/api/models/org/gated/revision/{upcoming}", f"/org/gated/resolve/{upcoming}/weights.bin",
                        "/org/gated/resolve/main/weights.bin", "/api/models/org/gated"):
                r = client.get(url)
                seen.append((url, r.status_code, r.text[:200] if r.status_code == 200 and "/api/" in url else ""))
            time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)  # the poller has asked for the sha before it exists: serve caches "no such commit"
    current = Refs.from_json(store.get_bytes(refs_key(GATED)))
    published = publish(store, GATED, files, seed="2", refs=current, info={"gated": "manual"})
    assert published.sha == upcoming
    time.sleep(2.0)  # past the negative cache: any wrong conclusion drawn during the race would show now
    stop.set()
    poller.join(30)
    assert seen and any(url.endswith("/api/models/org/gated") for url, _, _ in seen)
    assert not [s for s in seen if "/resolve/" in s[0] and s[1] == 200], "a gated body reached an anonymous client"
    assert not [s for s in seen if s[1] == 200 and '"gated":false' in s[2]], "the gated repo was shown as public"
    r = client.get("/org/gated/resolve/main/weights.bin")
    assert (r.status_code, r.headers["x-error-code"]) == (401, "GatedRepo")
    assert client.get("/org/gated/resolve/main/weights.bin", headers=ALICE).content == b"secret weights"


def test_polling_while_a_real_sync_publishes_never_opens_a_gated_repo(s3_server, fakehub) -> None:
    """The same race with the real sync from the fake hub: the new commit's sha is polled before it lands."""
    repo_id = f"race-{uuid.uuid4().hex[:8]}/gated"
    fakehub.create_repo("model", repo_id, {"config.json": b'{"v": 1}'}, gated="manual")
    settings = make_settings(s3_server, f"race-{uuid.uuid4().hex[:12]}", upstream_url=fakehub.url,
                             upstream_token=fakehub.tokens["service"],
                             transfer={"allowed_redirect_hosts": [fakehub.cdn_url.split("://", 1)[1]]})
    Store(settings.s3).ensure_bucket()
    repo = RepoRef.parse(repo_id)
    assert sync_repo(settings, repo, ["main"], write_report=False).ok
    upcoming = fakehub.commit("model", repo_id, {"weights.bin": b"secret weights"})
    tokens = [{"token": TOKEN_ALL, "name": "alice", "grants": ["race-*/*"]}]
    client = TestClient(create_app(load_serve_settings(s3=settings.s3, tokens=tokens, refs_ttl=0.05,
                                                       missing_ttl=1.0)), base_url="http://mirror.test")
    urls = [f"/api/models/{repo_id}/revision/{upcoming}", f"/{repo_id}/resolve/{upcoming}/weights.bin",
            f"/{repo_id}/resolve/main/weights.bin"]
    opened: list[tuple[str, int]] = []
    stop = threading.Event()

    def poll() -> None:
        for _ in range(3000):
            if stop.is_set():
                return
            for url in urls:
                status = client.get(url).status_code
                if status < 400 and "/resolve/" in url:
                    opened.append((url, status))
            time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    assert sync_repo(settings, repo, ["main"], write_report=False).revisions["main"] == upcoming
    time.sleep(2.0)
    stop.set()
    poller.join(30)
    assert opened == [], "a gated body reached an anonymous client"
    assert client.get(f"/{repo_id}/resolve/main/weights.bin").status_code == 401
    granted = client.get(f"/{repo_id}/resolve/main/weights.bin", headers=ALICE)
    assert granted.status_code == 200 and granted.content == b"secret weights"


def test_unrecorded_access_counts_as_private(bucket_settings: Settings, store: Store) -> None:
    """refs.json from a version that did not record private/gated: only granted identities see the repo."""
    old = RepoRef.parse("org/old")
    publish(store, old, {"config.json": b"{}"})
    store.put_bytes(refs_key(old), Refs.from_json(store.get_bytes(refs_key(old)))
                    .model_copy(update={"private": None, "gated": None}).to_json())
    client = make_client(bucket_settings)
    r = client.get("/api/models/org/old")
    assert (r.status_code, r.headers["x-error-code"]) == (401, "RepoNotFound")
    assert client.get("/org/old/resolve/main/config.json").status_code == 401
    assert "org/old" not in [m["id"] for m in client.get("/api/models").json()]
    assert client.get("/api/models/org/old", headers=ALICE).json()["private"] is True


def test_access_comes_from_refs_not_from_the_manifest(bucket_settings: Settings, store: Store) -> None:
    """A manifest that says public (or is missing) cannot open a repo refs.json marks private."""
    repo = RepoRef.parse("org/flip")
    first = publish(store, repo, {"config.json": b"{}"}, info={"private": False})
    store.put_bytes(refs_key(repo), Refs.from_json(store.get_bytes(refs_key(repo)))
                    .model_copy(update={"private": True}).to_json())
    client = make_client(bucket_settings)
    assert client.get("/api/models/org/flip").status_code == 401
    assert client.get(f"/org/flip/resolve/{first.sha}/config.json").status_code == 401
    store.delete(f"repos/models/org/flip/commits/{first.sha}.json")
    assert client.get("/api/models/org/flip").status_code == 401


def test_unreadable_refs_is_503_without_details(bucket_settings: Settings, store: Store) -> None:
    repo = RepoRef.parse("org/broken")
    publish(store, repo, {"config.json": b"{}"})
    store.put_bytes(refs_key(repo), b'{"branches": {"main": "not-a-sha"}}')
    client = make_client(bucket_settings)
    for method, url in (("GET", "/api/models/org/broken"), ("HEAD", "/org/broken/resolve/main/config.json")):
        r = client.request(method, url)
        assert r.status_code == 503 and r.headers["retry-after"], (method, url, r.status_code)
        assert bucket_settings.s3.bucket not in r.text + str(r.headers)
        assert "refs.json" not in r.text + str(r.headers)


def test_storage_down_answers_without_endpoint_or_bucket(bucket_settings: Settings) -> None:
    from hubmirror.embedded_s3 import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    broken = bucket_settings.s3.model_copy(update={"endpoint": endpoint})
    client = TestClient(create_app(load_serve_settings(s3=broken)))
    for url in ("/org/model/resolve/main/config.json", "/api/models/org/model", "/readyz", "/api/models"):
        r = client.get(url)
        assert r.status_code == 503, (url, r.status_code)
        leaked = r.text + str(r.headers)
        assert endpoint.split("//")[1] not in leaked and broken.bucket not in leaked, (url, leaked)
