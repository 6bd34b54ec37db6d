"""Issue 15: a sync asks the hub once per file, not once per part; the signed CDN URL is reused for every
range of the file until it expires (then one more `/resolve`) or the CDN refuses it (403/410: one more)."""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs

import pytest

from hubmirror.demohub.corpus import LARGE_MODEL
from mirror_core.bodies import EXPIRY_MARGIN
from mirror_core.layout import RepoRef
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from tests.sync.conftest import PART
from tests.sync.helpers import assert_commit_mirrored

BIN = "pytorch_model.bin"


def _sync_large(hub, settings) -> tuple[list[dict], list[dict]]:
    """Sync LARGE_MODEL; (every /resolve request, every CDN GET of the large body)."""
    repo = RepoRef.parse(LARGE_MODEL)
    result = sync_repo(settings, repo)
    assert result.ok, result.errors
    assert_commit_mirrored(hub, Store(settings.s3), repo, hub.repo_record("model", LARGE_MODEL)["branches"]["main"])
    log = hub.requests()
    return [r for r in log if r["kind"] == "resolve"], [r for r in log if r["kind"] == "cdn"]


@pytest.mark.parametrize("engine", ["stream", "hf_transfer"])
def test_one_resolve_per_file_however_many_parts(hub, make, engine: str) -> None:
    settings = make(engine=engine, hf_transfer_threshold=0)
    resolves, cdn = _sync_large(hub, settings)
    size = hub.file_record("model", LARGE_MODEL, BIN)["size"]
    per_file = Counter(r["path"].rsplit("/", 1)[-1] for r in resolves)
    assert per_file[BIN] == 1, per_file
    assert set(per_file.values()) == {1}  # every file, regular or LFS, is resolved exactly once
    if engine == "stream":
        assert len(cdn) == -(-size // PART) > 2  # one ranged GET per part, all on the same signed URL
    assert len({r["query"] for r in cdn}) == 1
    assert not any(r["authorization"] for r in cdn)  # the token never went to the CDN


def test_expired_url_costs_exactly_one_more_resolve(hub, make) -> None:
    """URLs live 6 s and every CDN answer takes 2 s, so the 8 parts (4 at a time) outlive the first URL: each
    URL is replaced only once it is about to expire, by one resolve, and the CDN never sees an expired one."""
    hub.configure(cdn_ttl=6)
    hub.set_faults({"action": "delay", "kind": "cdn", "delay": 2.0})
    resolves, cdn = _sync_large(hub, make(engine="stream"))
    body = sorted((r for r in resolves if r["path"].endswith(BIN)), key=lambda r: r["at"])
    urls = {r["query"] for r in cdn}
    assert len(body) >= 2, "the transfer should have outlived the first signed URL"
    assert len(body) == len(urls) < len(cdn)  # one resolve per signed URL, each URL used for several parts
    assert all(r["status"] == 206 for r in cdn)  # no request was wasted on an expired URL
    expiries = sorted(int(parse_qs(q)["expires"][0]) for q in urls)
    for later, expired in zip(body[1:], expiries, strict=False):
        assert later["at"] >= expired - EXPIRY_MARGIN - 0.5  # re-resolved only when the URL was (nearly) dead


@pytest.mark.parametrize("status", [403, 410])
def test_cdn_refusal_is_resolved_again_once(hub, make, status: int) -> None:
    hub.set_faults({"action": "error", "kind": "cdn", "status": status, "skip": 3, "count": 1})
    resolves, cdn = _sync_large(hub, make(engine="stream"))
    assert sum(r["path"].endswith(BIN) for r in resolves) == 2
    assert [r["status"] for r in cdn].count(status) == 1
