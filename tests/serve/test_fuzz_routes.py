"""A bounded fuzz over every serve route: traversal, percent-encodings, NUL, invalid UTF-8, huge params,
odd sort keys, bad revisions and every method. With S3 up, no answer may be a 5xx (nor leak a traceback),
no restricted repo may answer an ungranted caller with a success; bodies above the cap are refused with a
413 and per-repo state stays within its LRU bounds.
"""

from __future__ import annotations

import random
import time

import pytest

from mirror_core.settings import Settings
from tests.serve.test_app_handmade import TOKEN_ALL, TOKEN_NONE, make_client, world  # noqa: F401

SEED, REQUESTS, SECONDS = 20260310, 1500, 90
REPOS = ["org/model", "gpt2", "org/gated", "org/private", "org/ds", "nope/missing", "org", "a" * 300, "org/..",
         "..", "%2e%2e/%2e%2e", "org%2Fmodel", "org/model%00", "%ff%fe/x", "org/mo del", "-/-", "org/model/extra"]
REVISIONS = ["main", "refs%2Fpr%2F1", "refs/pr/1", "refs%2Fconvert%2Fparquet", "a" * 40, "A" * 40, "0" * 40,
             "abc1234", "main~1", "..", "%2e%2e", "%00", "%ff", "refs/heads/../../x", "x" * 5000, "", "%", "v1.0",
             "refs%2Fheads%2Fmain"]
PATHS = ["config.json", "weights.bin", "sub/dir/file%20with%20space.txt", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd",
         "%2e%2e/%2e%2e/x", "sub/%00", "%00", "%ff%ff", "a/" * 400, "", "sub", "data/train.csv", "\u00e9.txt",
         "x" * 20000, "sub//a.txt", "./config.json", "%25%32%65"]
QUERIES = ["", "?recursive=true&expand=true", "?recursive=1&cursor=" + "A" * 300, "?cursor=%00", "?cursor=eyJvIjotMX0",
           "?expand=blobs&expand[]=siblings&blobs=true", "?blobs=%ff", "?include_prs=1", "?expand=formatted",
           "?q=" + "é" * 3000, "?q=%00%ff", "?x=" + "y" * 30000, "?limit=abc", "?limit=99999999999999999999",
           "?sort=downloads", "?sort=likes&direction=-1", "?sort=trending_score", "?sort=__class__", "?sort=%00",
           "?search=org&author=org&filter=test&full=true", "?full=true&config=true&cardData=true", "?p=-1",
           "?cursor=" + "e" * 8]
LIST_SORTS = ["", "?sort=downloads", "?sort=likes", "?sort=created_at", "?sort=last_modified", "?sort=id",
              "?sort=gated", "?sort=config", "?sort=cardData", "?sort=private", "?sort=siblings", "?sort=tags"]
METHODS = ["GET", "GET", "GET", "HEAD", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
HEADERS = [{}, {"Authorization": f"Bearer {TOKEN_ALL}"}, {"Authorization": f"Bearer {TOKEN_NONE}"},
           {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "},
           {"Range": "bytes=0-0"}, {"Range": "bytes=-5"}, {"Range": "bytes=99999999999-"}, {"Range": "bytes=5-1"},
           {"Range": "items=0-1"}, {"Content-Type": "application/json"}, {"Host": "datasets-server.mirror.test"}]
BODIES = [None, b"paths=config.json&paths=sub", b'{"paths": ["config.json"], "expand": true}', b'{"paths": 5}',
          b"{not json", b'{"paths": [null]}', b"\xff\xfe", b"paths=" + b"%2e" * 5000, b'["paths"]']


def _urls(rng: random.Random) -> str:
    repo, rev, path, query = (rng.choice(REPOS), rng.choice(REVISIONS), rng.choice(PATHS), rng.choice(QUERIES))
    kind = rng.choice(["models/", "datasets/", "spaces/"])
    prefix = {"models/": "", "datasets/": "/datasets", "spaces/": "/spaces"}[kind]
    return rng.choice([
        f"{prefix}/{repo}/resolve/{rev}/{path}{query}",
        f"/api/{kind}{repo}{query}",
        f"/api/{kind}{repo}/revision/{rev}{query}",
        f"/api/{kind}{repo}/tree/{rev}/{path}{query}",
        f"/api/{kind}{repo}/paths-info/{rev}{query}",
        f"/api/{kind}{repo}/refs{query}",
        f"/api/{kind}{repo}/commits/{rev}{query}",
        f"/api/{kind}{repo}/auth-check{rng.choice(['', '/write', '/x/y'])}",
        f"/api/{kind}{repo}/{rng.choice(['treesize', 'xet-read-token', 'preupload', 'commit', 'discussions'])}/{rev}",
        f"/api/{kind.rstrip('/')}{query}",
        f"/api/{kind.rstrip('/')}{rng.choice(LIST_SORTS)}",
        f"/api/whoami-v2{query}",
        f"/ui/{kind}{repo}{query}",
        f"/{query}",
        rng.choice(["/healthz", "/readyz", "/metrics", "/api", "/api/", "//", "/%2e%2e/%2e%2e/etc/passwd",
                    "/api/models/../../../x", "/ui/", "/ui/bogus/x", "/api/%00", "/resolve", "/" + "a/" * 2000]),
    ])


def _leaks(url: str, headers: dict[str, str]) -> bool:
    """Whether a success for this URL would hand a restricted repo to a caller not granted it."""
    if headers.get("Authorization") == f"Bearer {TOKEN_ALL}" or headers.get("Host"):
        return False
    path = url.split("?", 1)[0]
    return path.startswith(("/org/gated/resolve/", "/org/private/", "/api/models/org/private"))


@pytest.mark.timeout(300)
def test_no_route_answers_5xx(bucket_settings: Settings, world) -> None:  # noqa: F811
    client = make_client(bucket_settings, page_size=2, expand_page_size=2)
    rng = random.Random(SEED)
    failures: list[tuple[str, str, int, str]] = []
    statuses: dict[int, int] = {}
    # Every listing sort key, for anonymous and granted callers, then random combinations.
    systematic = [("GET", f"/api/{kind}{sort}", headers) for kind in ("models", "datasets", "spaces")
                  for sort in LIST_SORTS for headers in HEADERS[:2]]
    deadline = time.monotonic() + SECONDS
    sent = 0
    while sent < REQUESTS and time.monotonic() < deadline:
        if systematic:
            method, url, headers = systematic.pop()
        else:
            method, url, headers = rng.choice(METHODS), _urls(rng), rng.choice(HEADERS)
        body = rng.choice(BODIES) if method in ("POST", "PUT", "PATCH") else None
        r = client.request(method, url, headers=headers, content=body)
        sent += 1
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if r.status_code >= 500 or "Traceback" in r.text:
            failures.append((method, url[:200], r.status_code, r.text[:200]))
        if r.status_code < 400 and _leaks(url, headers):
            failures.append((method, url[:200], r.status_code, "restricted repo answered to an ungranted caller"))
    print(f"{sent} requests, statuses {dict(sorted(statuses.items()))}")
    assert sent >= 500
    assert not failures, failures[:10]
    assert len(statuses) > 5  # the fuzz reached successes and several kinds of refusal


def test_request_bodies_are_capped(bucket_settings: Settings, world) -> None:  # noqa: F811
    client = make_client(bucket_settings)
    url = "/api/models/org/model/paths-info/main"
    big = b"paths=" + b"a" * (1024**2)
    r = client.post(url, content=big, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.headers["x-error-code"]) == (413, "PayloadTooLarge")

    def chunked():  # no Content-Length: the cap must hold while reading
        for _ in range(40):
            yield b"paths=" + b"b" * 64 * 1024 + b"&"

    r = client.post(url, content=chunked(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    r = client.post(url, data={"paths": ["config.json"]})
    assert r.status_code == 200 and [e["path"] for e in r.json()] == ["config.json"]


def test_per_repo_state_is_bounded(bucket_settings: Settings, world) -> None:  # noqa: F811
    client = make_client(bucket_settings, repo_cache_entries=100)
    state = client.app.state.ctx.state
    for i in range(400):
        assert client.head(f"/org/missing-{i}/resolve/main/x").status_code == 401
        assert client.head(f"/org/model/resolve/{i:040x}/config.json").status_code == 404
    assert len(state._refs) <= 100 and len(state._missing_commits) <= 100
    assert client.head("/org/model/resolve/main/config.json").status_code == 200
    for i in range(50):  # made-up methods must not each become a metrics label
        assert client.request(f"FUZZ{i}", "/org/model/resolve/main/config.json").status_code == 405
    assert "FUZZ" not in client.get("/metrics").text
