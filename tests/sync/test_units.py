"""Pure unit tests of the sync building blocks: hashes, host rules, backoff, revision resolution."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from mirror_core.errors import IntegrityError, InvalidRevisionError
from mirror_core.hashing import BodyHasher, git_blob_sha1, sha256_hex
from mirror_core.layout import RepoRef
from mirror_core.origins import host_matches, redirect_allowed, same_origin
from mirror_core.retry import RetryPolicy, retry_after_seconds
from mirror_core.selection import RepoPlan
from mirror_core.settings import TrendingFilter
from mirror_core.sync import RepoSyncResult, check_revisions, resolve_targets, trim_info
from mirror_core.trending import rejection

SHA_A, SHA_B, SHA_C = "a" * 40, "b" * 40, "c" * 40


@pytest.mark.parametrize("body", [b"", b"hello\n", bytes(range(256)) * 1000])
def test_git_blob_sha1_matches_git(body: bytes) -> None:
    expected = subprocess.run(["git", "hash-object", "--stdin"], input=body, capture_output=True,
                              check=True).stdout.decode().strip()
    assert git_blob_sha1(body) == expected


def test_body_hasher_streams_both_hashes() -> None:
    body = bytes(range(256)) * 4099
    hasher = BodyHasher(len(body), git=True)
    for i in range(0, len(body), 7777):
        hasher.update(memoryview(body)[i:i + 7777])
    assert hasher.sha256 == hashlib.sha256(body).hexdigest() == sha256_hex(body)
    assert hasher.git_oid == git_blob_sha1(body)
    assert hasher.verify("x", sha256=sha256_hex(body), git_oid=git_blob_sha1(body)) == sha256_hex(body)


def test_body_hasher_refuses_wrong_size_or_hash() -> None:
    hasher = BodyHasher(4, git=True)
    hasher.update(b"abc")
    with pytest.raises(IntegrityError, match="received 3 bytes"):
        hasher.verify("f")
    hasher.update(b"d")
    with pytest.raises(IntegrityError, match="sha256"):
        hasher.verify("f", sha256=sha256_hex(b"abce"))
    with pytest.raises(IntegrityError, match="git blob sha1"):
        hasher.verify("f", git_oid=git_blob_sha1(b"abce"))


@pytest.mark.parametrize("url,pattern,ok", [
    ("https://cdn-lfs.hf.co/x", "*.hf.co", True),
    ("https://hf.co/x", "*.hf.co", False),
    ("https://evilhf.co/x", "*.hf.co", False),
    ("https://hf.co/x", "hf.co", True),
    ("https://HF.co:443/x", "hf.co", True),
    ("http://127.0.0.1:9001/lfs", "127.0.0.1:9001", True),
    ("http://127.0.0.1:9002/lfs", "127.0.0.1:9001", False),
    ("http://127.0.0.1:9002/lfs", "127.0.0.1", True),
    ("https://a.b.xethub.hf.co/x", "*.xethub.hf.co:443", True),
    ("https://a.xethub.hf.co:8443/x", "*.xethub.hf.co:443", False),
    ("http://[::1]:8080/x", "[::1]:8080", True),
])
def test_host_matching(url: str, pattern: str, ok: bool) -> None:
    assert host_matches(url, pattern) is ok


def test_redirect_rules() -> None:
    up = "http://127.0.0.1:8000"
    assert redirect_allowed("http://127.0.0.1:8000/other", up, [])
    assert not redirect_allowed("http://127.0.0.1:8001/cdn", up, [])
    assert redirect_allowed("http://127.0.0.1:8001/cdn", up, ["127.0.0.1:8001"])
    assert not redirect_allowed("file:///etc/passwd", up, ["*"])
    assert same_origin("http://127.0.0.1:8000/a", "http://127.0.0.1:8000/b")
    assert not same_origin("http://127.0.0.1:8000/a", "http://127.0.0.1:8001/a")


def test_retry_after_and_backoff() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds({"retry-after": later}) <= 30
    assert retry_after_seconds({"RateLimit": '"api";r=0;t=12'}) == 12
    assert retry_after_seconds({}) is None
    policy = RetryPolicy(max_retries=5, base=0.5, cap=3)
    assert [policy.delay(i) for i in range(4)] == [0.5, 1, 2, 3]
    assert policy.delay(0, retry_after=100) == 3
    assert policy.delay(3, retry_after=0.2) == 0.2


def test_check_revisions() -> None:
    assert check_revisions(None) == ["main"]
    assert check_revisions(["v*", "refs/pr/1", SHA_A]) == ["v*", "refs/pr/1", SHA_A]
    with pytest.raises(InvalidRevisionError):
        check_revisions(["a..b"])
    with pytest.raises(InvalidRevisionError):
        check_revisions(["bad name"])


def _remote() -> dict[str, dict[str, str]]:
    return {"branches": {"main": SHA_A, "dev": SHA_B, "release-1": SHA_C}, "tags": {"v1.0": SHA_C},
            "converts": {"parquet": SHA_B}, "pull_requests": {"1": SHA_B}}


def test_resolve_targets() -> None:
    model = RepoRef.parse("org/m")
    result = RepoSyncResult(model)
    targets = resolve_targets(model, ["main", "release-*", "v1.0", "refs/pr/1", SHA_B], _remote(), result)
    assert [(t.kind, t.name, t.sha) for t in targets] == [
        ("branches", "main", SHA_A), ("branches", "release-1", SHA_C), ("tags", "v1.0", SHA_C),
        ("pull_requests", "1", SHA_B), (None, SHA_B, SHA_B)]
    assert result.ok
    dataset = RepoRef.parse("org/d", "dataset")
    targets = resolve_targets(dataset, ["main"], _remote(), result)
    assert ("converts", "parquet", SHA_B) in [(t.kind, t.name, t.sha) for t in targets]
    resolve_targets(model, ["nope"], _remote(), result)
    assert not result.ok and "nope" in result.error and "main" in result.error


def test_a_glob_under_refs_matches_in_that_ref_kind_and_a_glob_matching_nothing_warns() -> None:
    model = RepoRef.parse("org/m")
    result = RepoSyncResult(model)
    targets = resolve_targets(model, ["refs/pr/*", "refs/heads/re*", "refs/tags/v*", "refs/tags/nothing-*"],
                              _remote(), result)
    assert [(t.kind, t.name) for t in targets] == [
        ("pull_requests", "1"), ("branches", "release-1"), ("tags", "v1.0")]
    assert result.ok and result.warnings == ["model:org/m: revision pattern 'refs/tags/nothing-*' matches no tags "
                                             "upstream"]


def test_trim_info_drops_volatile_counters() -> None:
    info = {"id": "o/m", "sha": SHA_A, "downloads": 5, "likes": 2, "trendingScore": 9, "tags": ["x"],
            "cardData": {"license": "mit"}}
    assert trim_info(info) == {"id": "o/m", "sha": SHA_A, "tags": ["x"], "cardData": {"license": "mit"}}


def test_trending_rejections() -> None:
    item = {"id": "o/m", "tags": ["a", "b"], "library_name": "timm", "pipeline_tag": "fill-mask"}
    assert rejection(item, TrendingFilter()) is None
    assert "lacks tags" in rejection(item, TrendingFilter(tags=["a", "c"]))
    assert "excluded" in rejection(item, TrendingFilter(exclude_tags=["b"]))
    assert "library" in rejection(item, TrendingFilter(libraries=["transformers"]))
    assert rejection(item, TrendingFilter(libraries=["timm"], pipeline_tags=["fill-mask"])) is None
    assert "pipeline" in rejection(item, TrendingFilter(pipeline_tags=["text-generation"]))


def test_repo_plan_round_trip() -> None:
    plan = RepoPlan("org/m", "model", ["main", "v*"], ["*.json"], None, "trending")
    again = RepoPlan.from_dict(plan.to_dict())
    assert again == plan and again.repo_type == "models" and again.repo == RepoRef.parse("org/m")
    with pytest.raises(ValueError):
        RepoPlan("bad/id/x")


def test_token_goes_only_to_the_upstream_origin() -> None:
    from mirror_core.bodies import BodyClient
    from mirror_core.settings import load_settings
    from mirror_core.upstream import Upstream

    settings = load_settings(upstream_url="http://127.0.0.1:8000", upstream_token="hf_secret",
                             transfer={"allowed_redirect_hosts": ["127.0.0.1:8001"]})
    client = BodyClient(settings, Upstream(settings))
    assert client._headers("http://127.0.0.1:8000/org/m/resolve/main/x", 0)["Authorization"] == "Bearer hf_secret"
    for other in ("http://127.0.0.1:8001/lfs/abc", "https://127.0.0.1:8000/x", "http://localhost:8000/x"):
        assert "Authorization" not in client._headers(other, 5)
    assert client._headers("http://127.0.0.1:8001/lfs/abc", 5)["Range"] == "bytes=5-"


def test_signed_url_expiry_is_read_from_the_url() -> None:
    from mirror_core.bodies import url_expiry

    assert url_expiry("https://cdn-lfs.hf.co/x?Expires=1764000000&Signature=s&Key-Pair-Id=k") == 1764000000
    amz = "https://cas-bridge.xethub.hf.co/x?X-Amz-Date=20261203T080000Z&X-Amz-Expires=3600&X-Amz-Signature=s"
    assert url_expiry(amz) == datetime(2026, 12, 3, 9, 0, tzinfo=UTC).timestamp()
    assert url_expiry("https://cdn.example/x?X-Amz-Date=garbage&X-Amz-Expires=3600") is None
    assert url_expiry("https://cdn.example/x?token=abc") is None


def test_a_signed_url_dead_on_arrival_is_trusted_until_refused() -> None:
    """Clock skew: a fresh URL that looks expired by our clock must not make every range resolve again."""
    import time

    from mirror_core.bodies import _Signed

    assert not _Signed(f"https://cdn.example/x?Expires={int(time.time()) - 3600}").stale()
    assert _Signed(f"https://cdn.example/x?Expires={int(time.time()) + 3600}").expires is not None


def test_hostile_hops_are_refused_with_the_host_named() -> None:
    from mirror_core.errors import RedirectNotAllowedError
    from mirror_core.origins import check_hop

    up = "https://hub.example"
    check_hop("tree", up + "/api/a", up + "/api/b", up, [])
    check_hop("tree", up + "/api/a", "https://cdn.example/x", up, ["cdn.example"])
    with pytest.raises(RedirectNotAllowedError, match="evil.example:443.*allowed_redirect_hosts"):
        check_hop("tree", up + "/api/a", "https://evil.example/x", up, ["cdn.example"])
    with pytest.raises(RedirectNotAllowedError, match="from https"):
        check_hop("tree", up + "/api/a", "http://cdn.example/x", up, ["cdn.example"])
