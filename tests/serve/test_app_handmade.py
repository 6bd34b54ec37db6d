"""serve's HF surface through Starlette's TestClient, over a bucket published by hand (tests/serve/handmade.py)."""

from __future__ import annotations

import hashlib
import os

import pytest
from starlette.testclient import TestClient

from mirror_core.catalog import build_catalog
from mirror_core.hashing import git_blob_sha1
from mirror_core.layout import RepoRef
from mirror_core.manifest import Refs
from mirror_core.settings import Settings
from mirror_core.store import Store
from serve.app import create_app
from serve.config import load_serve_settings
from tests.bucket import Published, publish

TOKEN_ALL = "mirror-token-alice"
TOKEN_NONE = "mirror-token-bob"


@pytest.fixture
def world(bucket_settings: Settings, store: Store) -> dict[str, Published]:
    big = os.urandom(3 * 1024 * 1024 + 17)
    model = publish(store, RepoRef.parse("org/model"), {
        "config.json": b'{"model_type": "bert"}\n', "weights.bin": big, "sub/dir/file with space.txt": b"hi\n",
        "sub/a.txt": b"a\n", "empty.txt": b"",
    }, lfs={"weights.bin"})
    canonical = publish(store, RepoRef.parse("gpt2"), {"config.json": b"{}"})
    ds = publish(store, RepoRef.parse("org/ds", "dataset"), {"data/train.csv": b"a,b\n1,2\n", "README.md": b"# ds\n"})
    gated = publish(store, RepoRef.parse("org/gated"), {"config.json": b"{}"}, info={"gated": "auto"})
    private = publish(store, RepoRef.parse("org/private"), {"config.json": b"{}"}, info={"private": True})
    build_catalog(bucket_settings, store)
    return {"model": model, "gpt2": canonical, "ds": ds, "gated": gated, "private": private}


def make_client(settings: Settings, **overrides) -> TestClient:
    tokens = [{"token": TOKEN_ALL, "name": "alice", "grants": ["org/*"]}, {"token": TOKEN_NONE, "name": "bob"}]
    serve_settings = load_serve_settings(s3=settings.s3, tokens=tokens, **overrides)
    return TestClient(create_app(serve_settings), base_url="http://mirror.test")


def get_all(client: TestClient, url: str, **kwargs) -> list:
    """Follow `Link: rel=next` like huggingface_hub does (bounded)."""
    out: list = []
    for _ in range(100):
        r = client.get(url, **kwargs)
        assert r.status_code == 200, r.text
        out += r.json()
        link = r.headers.get("link")
        if not link:
            return out
        url = link[1:link.index(">")]
    raise AssertionError("more than 100 pages")


@pytest.fixture
def client(bucket_settings: Settings, world) -> TestClient:
    return make_client(bucket_settings, page_size=2, expand_page_size=2)


def test_head_regular_and_lfs(client: TestClient, world) -> None:
    m = world["model"]
    r = client.head("/org/model/resolve/main/config.json")
    data = m.files["config.json"]
    assert r.status_code == 200
    assert r.headers["x-repo-commit"] == m.sha
    assert r.headers["etag"] == f'"{git_blob_sha1(data)}"'
    assert r.headers["content-length"] == str(len(data))
    assert "x-linked-etag" not in r.headers
    assert not any(k.lower().startswith("x-xet") for k in r.headers)
    r = client.head("/org/model/resolve/main/weights.bin")
    sha256 = hashlib.sha256(m.files["weights.bin"]).hexdigest()
    assert r.headers["x-linked-etag"] == f'"{sha256}"' and r.headers["etag"] == f'"{sha256}"'
    assert r.headers["content-length"] == r.headers["x-linked-size"] == str(len(m.files["weights.bin"]))
    r = client.head("/org/model/resolve/main/empty.txt")
    assert r.status_code == 200 and r.headers["content-length"] == "0"


def test_get_full_range_and_416(client: TestClient, world) -> None:
    m = world["model"]
    big = m.files["weights.bin"]
    assert client.get("/org/model/resolve/main/weights.bin").content == big
    r = client.get("/org/model/resolve/main/weights.bin", headers={"Range": "bytes=100-107"})
    assert r.status_code == 206 and r.content == big[100:108]
    assert r.headers["content-range"] == f"bytes 100-107/{len(big)}"
    r = client.get("/org/model/resolve/main/weights.bin", headers={"Range": "bytes=1000-"})  # streamed in chunks
    assert r.status_code == 206 and r.content == big[1000:]
    r = client.get("/org/model/resolve/main/weights.bin", headers={"Range": f"bytes={len(big) - 5}-{len(big) + 99}"})
    assert r.status_code == 206 and r.content == big[-5:]
    r = client.get("/org/model/resolve/main/weights.bin", headers={"Range": f"bytes={len(big)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(big)}"
    assert r.headers["x-error-code"] == "RangeNotSatisfiable"
    assert client.get("/org/model/resolve/main/sub/dir/file%20with%20space.txt").content == b"hi\n"
    assert client.get("/org/model/resolve/main/empty.txt").content == b""


def test_revisions_resolve_by_sha_prefix_and_ref_name(client: TestClient, world) -> None:
    m = world["model"]
    for rev in (m.sha, m.sha[:7], m.sha[:12], "refs%2Fheads%2Fmain"):
        r = client.head(f"/org/model/resolve/{rev}/config.json")
        assert r.status_code == 200, rev
        assert r.headers["x-repo-commit"] == m.sha
    r = client.head("/org/model/resolve/nope/config.json")
    assert (r.status_code, r.headers["x-error-code"]) == (404, "RevisionNotFound")
    r = client.head(f"/org/model/resolve/{'0' * 40}/config.json")
    assert r.headers["x-error-code"] == "RevisionNotFound"
    assert client.head("/gpt2/resolve/main/config.json").status_code == 200
    assert client.get("/api/models/gpt2/refs").json()["branches"][0]["targetCommit"] == world["gpt2"].sha


def test_missing_things_have_codes(client: TestClient, world) -> None:
    m = world["model"]
    r = client.head("/org/model/resolve/main/nope.txt")
    assert (r.status_code, r.headers["x-error-code"], r.headers["x-repo-commit"]) == (404, "EntryNotFound", m.sha)
    r = client.get("/api/models/org/absent")
    assert (r.status_code, r.headers["x-error-code"]) == (401, "RepoNotFound")
    r = client.get("/api/models/org/absent", headers={"Authorization": f"Bearer {TOKEN_NONE}"})
    assert (r.status_code, r.headers["x-error-code"]) == (404, "RepoNotFound")
    r = client.get("/api/models/org/model", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["x-error-code"]
    r = client.get("/api/agent-harnesses")
    assert r.status_code == 404 and r.headers["x-error-code"]
    r = client.get("/info?dataset=org/ds", headers={"Host": "datasets-server.mirror.test"})
    assert r.status_code == 404 and r.headers["x-error-code"]


def test_restricted_repos_reach_only_granted_tokens(client: TestClient, world) -> None:
    alice, bob = {"Authorization": f"Bearer {TOKEN_ALL}"}, {"Authorization": f"Bearer {TOKEN_NONE}"}
    r = client.head("/org/gated/resolve/main/config.json")
    assert (r.status_code, r.headers["x-error-code"]) == (401, "GatedRepo")
    r = client.head("/org/gated/resolve/main/config.json", headers=bob)
    assert (r.status_code, r.headers["x-error-code"]) == (403, "GatedRepo")
    assert client.head("/org/gated/resolve/main/config.json", headers=alice).status_code == 200
    assert client.get("/api/models/org/gated").json()["gated"] == "auto"
    r = client.get("/api/models/org/private")
    assert (r.status_code, r.headers["x-error-code"]) == (401, "RepoNotFound")
    r = client.get("/api/models/org/private", headers=bob)
    assert (r.status_code, r.headers["x-error-code"]) == (404, "RepoNotFound")
    assert client.get("/api/models/org/private", headers=alice).json()["private"] is True
    assert "org/private" not in [m["id"] for m in get_all(client, "/api/models")]
    assert "org/private" in [m["id"] for m in get_all(client, "/api/models", headers=alice)]
    assert client.get("/api/whoami-v2", headers=alice).json()["name"] == "alice"
    assert client.get("/api/whoami-v2").status_code == 401


def test_info_tree_paths_info_refs_commits(client: TestClient, world) -> None:
    m = world["model"]
    info = client.get("/api/models/org/model?blobs=true").json()
    assert info["id"] == "org/model" and info["sha"] == m.sha and info["lastModified"].endswith("Z")
    sib = {s["rfilename"]: s for s in info["siblings"]}
    assert set(sib) == set(m.files)
    assert sib["weights.bin"]["lfs"]["sha256"] == hashlib.sha256(m.files["weights.bin"]).hexdigest()
    assert sib["config.json"]["size"] == len(m.files["config.json"])
    assert client.get(f"/api/models/org/model/revision/{m.sha}").json()["sha"] == m.sha
    assert client.get("/api/models/org/model?expand=sha&expand=lastModified").json().keys() <= {
        "_id", "id", "sha", "lastModified"}
    # paging: 2 per page in this fixture, absolute Link to this mirror, pinned to the commit
    seen, url = [], "/api/models/org/model/tree/main?recursive=true&expand=false"
    for _ in range(10):
        r = client.get(url)
        seen += r.json()
        link = r.headers.get("link")
        if not link:
            break
        url = link[1:link.index(">")]
        assert url.startswith(f"http://mirror.test/api/models/org/model/tree/{m.sha}")
    files = {e["path"] for e in seen if e["type"] == "file"}
    dirs = {e["path"] for e in seen if e["type"] == "directory"}
    assert files == set(m.files) and dirs == {"sub", "sub/dir"}
    assert not any("xetHash" in e for e in seen)
    r = client.get("/api/models/org/model/tree/main/sub%2Fdir")
    assert [e["path"] for e in r.json()] == ["sub/dir/file with space.txt"]
    r = client.get("/api/models/org/model/tree/main/nope")
    assert (r.status_code, r.headers["x-error-code"]) == (404, "EntryNotFound")
    r = client.post("/api/models/org/model/paths-info/main", data={"paths": ["config.json", "sub", "nope"],
                                                                   "expand": "true"})
    got = {e["path"]: e for e in r.json()}
    assert set(got) == {"config.json", "sub"} and got["sub"]["type"] == "directory"
    assert got["config.json"]["lastCommit"]["id"] == m.sha
    refs = client.get("/api/models/org/model/refs?include_prs=1").json()
    assert set(refs) == {"branches", "converts", "tags", "pullRequests"}
    commits = client.get("/api/models/org/model/commits/main?expand%5B%5D=formatted").json()
    assert commits[0]["id"] == m.sha and "formatted" in commits[0]


def test_listing_and_auth_check(client: TestClient, world) -> None:
    assert client.get("/api/models?search=gated").json() == []  # restricted: only for granted identities
    alice = {"Authorization": f"Bearer {TOKEN_ALL}"}
    assert [m["id"] for m in client.get("/api/models?search=gated", headers=alice).json()] == ["org/gated"]
    assert {m["id"] for m in get_all(client, "/api/models?author=org&limit=100")} == {"org/model"}
    assert {m["id"] for m in get_all(client, "/api/models?author=org", headers=alice)} == {
        "org/model", "org/gated", "org/private"}
    assert [d["id"] for d in client.get("/api/datasets").json()] == ["org/ds"]
    assert client.get("/api/models/org/model/auth-check").status_code == 200
    r = client.get("/api/models/org/gated/auth-check")
    assert (r.status_code, r.headers["x-error-code"]) == (401, "GatedRepo")


def test_refs_ttl_sees_new_publish(bucket_settings: Settings, store: Store, world) -> None:
    client = make_client(bucket_settings, refs_ttl=0)
    old = world["model"]
    new = publish(store, old.repo, {"config.json": b'{"v": 2}'}, seed="2",
                  refs=Refs.from_json(store.get_bytes("repos/models/org/model/refs.json")))
    assert client.head("/org/model/resolve/main/config.json").headers["x-repo-commit"] == new.sha
    assert client.head(f"/org/model/resolve/{old.sha}/weights.bin").status_code == 200


def test_storage_down_is_503(bucket_settings: Settings, world) -> None:
    from hubmirror.embedded_s3 import free_port

    broken = bucket_settings.s3.model_copy(update={"endpoint": f"http://127.0.0.1:{free_port()}"})
    client = TestClient(create_app(load_serve_settings(s3=broken)))
    r = client.head("/org/model/resolve/main/config.json")
    assert r.status_code == 503 and r.headers["x-error-code"] == "StorageUnavailable" and r.headers["retry-after"]
    r = client.get("/readyz")
    assert r.status_code == 503 and r.headers["x-error-code"]
    assert client.get("/healthz").status_code == 200


def test_web_ui_lists_and_explains(client: TestClient, world) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "org/model" in page.text and "org/gated" not in page.text and "org/private" not in page.text
    granted = client.get("/", headers={"Authorization": f"Bearer {TOKEN_ALL}"}).text
    assert "org/gated" in granted and "org/private" in granted
    assert "org/model" not in client.get("/?q=gated", headers={"Authorization": f"Bearer {TOKEN_ALL}"}).text
    repo = client.get("/ui/models/org/model")
    assert "HF_ENDPOINT=http://mirror.test" in repo.text and "hf download org/model" in repo.text
    assert world["model"].sha in repo.text and "weights.bin" in repo.text
    assert f"/org/model/resolve/{world['model'].sha}/weights.bin" in repo.text
    assert "--repo-type dataset" in client.get("/ui/datasets/org/ds").text
    private = client.get("/ui/models/org/private")
    assert private.status_code == 404 and "not mirrored" in private.text
    assert "<script>" not in client.get("/?q=<script>").text
    assert client.get("/?sort=bogus").status_code == 400
    metrics = client.get("/metrics").text
    assert "hubmirror_serve_requests_total" in metrics and "hubmirror_serve_cache_total" in metrics


def test_web_ui_obeys_anonymous_off_and_signs_in_with_a_token(bucket_settings: Settings, world) -> None:
    client = make_client(bucket_settings, anonymous=False)
    for path in ("/", "/ui/models/org/model", "/ui/status", "/ui/trending"):
        r = client.get(path)
        assert r.status_code == 401 and "Sign in" in r.text and world["model"].sha not in r.text, path
        assert "<td><a href=\"/ui/models/org/model\">" not in r.text
    assert client.get("/api/cache/repos").status_code == 401
    bad = client.post("/ui/login", data={"token": "nope"}, follow_redirects=False)
    assert bad.status_code == 401
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        away = client.post("/ui/login", data={"token": TOKEN_NONE, "next": elsewhere}, follow_redirects=False)
        assert away.headers["location"] == "/"  # never an open redirect
    ok = client.post("/ui/login", data={"token": TOKEN_NONE, "next": "/"}, follow_redirects=False)
    assert ok.status_code == 303 and "httponly" in ok.headers["set-cookie"].lower()
    page = client.get("/")  # the cookie now identifies bob: public repos only
    assert page.status_code == 200 and "org/model" in page.text and "org/gated" not in page.text


def test_web_ui_answers_storage_trouble_with_503(bucket_settings: Settings, world) -> None:
    from hubmirror.embedded_s3 import free_port

    broken = bucket_settings.s3.model_copy(update={"endpoint": f"http://127.0.0.1:{free_port()}"})
    client = TestClient(create_app(load_serve_settings(s3=broken)))
    for path in ("/", "/ui/models/org/model", "/ui/status", "/ui/trending", "/api/cache/stats"):
        r = client.get(path)
        assert r.status_code == 503 and r.headers["retry-after"], path


def test_every_4xx_has_an_error_code(client: TestClient, world) -> None:
    for method, path in (("GET", "/ui/"), ("POST", "/healthz"), ("DELETE", "/org/model/resolve/main/config.json"),
                         ("GET", "/api/models/org/model/paths-info/main"), ("GET", "/api/spaces/x/y/z/w"),
                         ("GET", "/api/models/org/model/tree/main?cursor=bogus"), ("GET", "/nothing/here")):
        r = client.request(method, path)
        assert 400 <= r.status_code < 500 and r.headers.get("x-error-code"), (method, path, r.status_code)
