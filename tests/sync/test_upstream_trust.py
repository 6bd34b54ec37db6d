"""Issue 10 items 5, 6 and 9: the upstream token stays on the upstream's origin (pagination Links, metadata
redirects, hf_transfer), upstream listings are bounded and loop-detected, hf_transfer failures fall back."""

from __future__ import annotations

import pytest

import mirror_core.transfer as transfer_module
from hubmirror.demohub.corpus import LARGE_MODEL, MANY_FILES_MODEL, SMALL_MODEL
from mirror_core.layout import RepoRef
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from mirror_core.upstream import Upstream
from tests.sync.helpers import assert_commit_mirrored, published_refs


def _fails_unpublished(settings, repo_id: str, *needles: str) -> str:
    repo = RepoRef.parse(repo_id)
    result = sync_repo(settings, repo)
    assert not result.ok
    for needle in needles:
        assert needle in result.error, result.error
    assert published_refs(Store(settings.s3), repo) is None
    return result.error


def test_off_origin_pagination_link_is_refused_and_gets_no_token(hub, make, listener) -> None:
    hub.configure(tree_page_size=3, page_link_origin=listener.origin)
    _fails_unpublished(make(), SMALL_MODEL, "next-page Link", listener.host, "allowed_redirect_hosts")
    assert listener.requests == []
    trees = [r for r in hub.requests() if "/tree/" in r["path"]]
    assert len(trees) == 1 and trees[0]["authorization"]  # the first page came from the origin, with the token


def test_pagination_link_to_an_allowed_host_is_followed_without_the_token(hub, make, listener) -> None:
    hub.configure(tree_page_size=3, page_link_origin=listener.origin)
    settings = make(allowed_redirect_hosts=[hub.cdn_url.split("://", 1)[1], listener.host])
    _fails_unpublished(settings, SMALL_MODEL, "not found")  # the listener answers 404
    assert listener.requests and "/tree/" in listener.requests[0]["path"]
    assert all(r["authorization"] is None for r in listener.requests)


@pytest.mark.parametrize("path", ["/tree/", "/commits/", "/refs"])
def test_off_origin_metadata_redirect_is_refused(hub, make, listener, path: str) -> None:
    hub.add_fault("redirect", kind="api", path=path, location=listener.origin)
    _fails_unpublished(make(), SMALL_MODEL, "redirected to", listener.host, "allowed_redirect_hosts")
    assert listener.requests == []


def test_metadata_redirect_to_an_allowed_host_strips_the_token(hub, make, listener) -> None:
    hub.add_fault("redirect", kind="api", path="/tree/", location=listener.origin)
    settings = make(allowed_redirect_hosts=[hub.cdn_url.split("://", 1)[1], listener.host])
    _fails_unpublished(settings, SMALL_MODEL)
    assert listener.requests and all(r["authorization"] is None for r in listener.requests)


def test_trending_pages_stay_on_the_origin(hub, make, listener) -> None:
    hub.configure(page_link_origin=listener.origin)
    upstream = Upstream(make())
    assert len(upstream.trending("models", 5)) == 5  # a full first page: no Link followed at all
    hub.add_fault("redirect", kind="api", path="/api/models", location=listener.origin)
    with pytest.raises(Exception, match="allowed_redirect_hosts"):
        upstream.trending("models", 5)
    assert listener.requests == []


def test_looping_pagination_fails_clearly_after_one_page(hub, make) -> None:
    hub.configure(tree_page_size=3, page_link_loop=True)
    _fails_unpublished(make(), SMALL_MODEL, "pagination loops")
    assert len([r for r in hub.requests() if "/tree/" in r["path"]]) == 1


def test_pagination_is_capped_in_pages_and_entries(hub, make) -> None:
    hub.configure(tree_page_size=100)  # MANY_FILES_MODEL: > 2,500 entries, so > 25 pages
    _fails_unpublished(make(max_pages=5), MANY_FILES_MODEL, "more than 5 pages", "transfer.max_pages")
    assert len([r for r in hub.requests() if "/tree/" in r["path"]]) == 5
    hub.reset()
    hub.configure(tree_page_size=100)
    _fails_unpublished(make(max_entries=250), MANY_FILES_MODEL, "more than 250 entries", "transfer.max_entries")
    assert len([r for r in hub.requests() if "/tree/" in r["path"]]) == 3


def test_hf_transfer_gets_only_allowed_urls_and_no_token_off_origin(hub, make, monkeypatch) -> None:
    calls: list[dict] = []
    real = transfer_module.run_hf_transfer
    monkeypatch.setattr(transfer_module, "run_hf_transfer", lambda args: calls.append(args) or real(args))
    refused = make(engine="hf_transfer", hf_transfer_threshold=0, allowed_redirect_hosts=[])
    _fails_unpublished(refused, LARGE_MODEL, "allowed_redirect_hosts")
    assert calls == [] and hub.counters()["cdn"]["requests"] == 0  # never handed the CDN URL

    settings = make(engine="hf_transfer", hf_transfer_threshold=0)
    assert sync_repo(settings, RepoRef.parse(LARGE_MODEL)).ok
    assert len(calls) == 1 and calls[0]["url"].startswith(hub.cdn_url)
    assert not any(k.lower() == "authorization" for k in calls[0]["headers"])
    assert not any(r["authorization"] for r in hub.requests() if r["kind"] == "cdn")


def test_hf_transfer_failure_falls_back_to_stream(hub, make) -> None:
    hub.add_fault("error", kind="cdn", header="user-agent: hf_transfer", status=503)
    settings = make(engine="hf_transfer", hf_transfer_threshold=0, max_retries=1)
    repo = RepoRef.parse(LARGE_MODEL)
    result = sync_repo(settings, repo)
    assert result.ok, result.errors
    assert hub.faults()[0]["fired"] >= 1  # hf_transfer really failed
    assert any(r["status"] == 206 and r["fault"] is None for r in hub.requests() if r["kind"] == "cdn")
    assert_commit_mirrored(hub, Store(settings.s3), repo, hub.repo_record("model", LARGE_MODEL)["branches"]["main"])


def test_hf_transfer_does_not_freeze_the_other_threads(hub, make, monkeypatch) -> None:
    """hf_transfer holds the GIL while it downloads: run in this process, it would stop every other
    transfer thread for the whole download (a ticking thread would tick about once)."""
    import threading
    import time

    hub.add_fault("delay", kind="cdn", header="user-agent: hf_transfer", delay=0.5)
    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    spans: list[tuple[float, float]] = []
    real = transfer_module.run_hf_transfer

    def timed(args: dict) -> None:
        started = time.monotonic()
        try:
            real(args)
        finally:
            spans.append((started, time.monotonic()))

    monkeypatch.setattr(transfer_module, "run_hf_transfer", timed)
    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        assert sync_repo(make(engine="hf_transfer", hf_transfer_threshold=0), RepoRef.parse(LARGE_MODEL)).ok
    finally:
        done.set()
        ticker.join()
    (start, end), = spans
    assert end - start >= 0.5
    assert sum(start <= t <= end for t in ticks) >= 10
