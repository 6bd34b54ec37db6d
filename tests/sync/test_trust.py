"""The sync side of the trust boundary (issue 10): a listed sha256 is not a key to stored bodies, and
refs.json records the upstream's access, follows it when it changes, and fails closed when it is lost."""

from __future__ import annotations

import hashlib
import os
import uuid

from mirror_core.layout import RepoRef, blob_key, refs_key, repo_prefix
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from tests.sync.helpers import published_refs

WEIGHTS = "model.safetensors"


def _repo(hub, files: dict[str, bytes], **access) -> RepoRef:
    repo_id = f"hubmirror-trust/{uuid.uuid4().hex[:12]}"
    hub.create_repo("model", repo_id, files, **access)
    return RepoRef.parse(repo_id)


def _body_requests(hub, repo: RepoRef) -> list[dict]:
    """Downloads of the weights of `repo` (the resolve requests for it)."""
    return [r for r in hub.requests() if r["kind"] == "resolve" and r["path"].startswith(f"/{repo.repo_id}/")
            and r["path"].endswith(WEIGHTS)]


def test_foreign_sha256_listing_cannot_publish_a_gated_body(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    secret = os.urandom(256 * 1024)
    sha256 = hashlib.sha256(secret).hexdigest()
    gated = _repo(hub, {"README.md": b"# gated\n", WEIGHTS: secret}, gated="manual")
    assert sync_repo(settings, gated).ok
    assert store.stat(blob_key(sha256)) is not None

    for served in (os.urandom(len(secret)), None):  # other bytes of the same size, or nothing at all
        hostile = _repo(hub, {"README.md": b"# totally public\n"})
        hub.forge_lfs("model", hostile.repo_id, WEIGHTS, sha256, len(secret), served)
        hub.reset()
        result = sync_repo(settings, hostile)
        assert not result.ok and WEIGHTS in result.error
        assert _body_requests(hub, hostile), "the listed sha256 was trusted: the body was never downloaded"
        assert published_refs(store, hostile) is None  # nothing of it is visible, so nothing to serve
        assert not list(store.list(repo_prefix(hostile)))  # no manifest names the body under its name either
    assert hashlib.sha256(store.get_bytes(blob_key(sha256))).hexdigest() == sha256  # the gated body is intact


def test_honest_copy_of_a_gated_body_is_downloaded_and_verified_but_stored_once(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    body = os.urandom(200 * 1024)
    sha256 = hashlib.sha256(body).hexdigest()
    assert sync_repo(settings, _repo(hub, {WEIGHTS: body}, gated="auto")).ok
    uploaded = store.stat(blob_key(sha256)).last_modified
    copy = _repo(hub, {WEIGHTS: body})
    hub.reset()
    result = sync_repo(settings, copy)
    assert result.ok, result.errors
    assert result.bytes_fetched == len(body) and result.files_fetched == 1 and _body_requests(hub, copy)
    assert store.stat(blob_key(sha256)).last_modified == uploaded  # verified, then the upload was skipped


def test_public_and_same_repo_bodies_are_reused_without_download(hub, make) -> None:
    settings = make()
    body = os.urandom(200 * 1024)
    first = _repo(hub, {WEIGHTS: body, "README.md": b"a\n"})
    assert sync_repo(settings, first).ok
    second = _repo(hub, {WEIGHTS: body, "README.md": b"b\n"})
    hub.reset()
    result = sync_repo(settings, second)
    assert result.ok and result.bytes_reused == len(body) and not _body_requests(hub, second)
    assert hub.counters()["cdn"]["requests"] == 0

    hub.commit("model", second.repo_id, {"README.md": b"c\n"})  # same repo: its own manifest names the body
    hub.reset()
    again = sync_repo(settings, second)
    assert again.ok and again.files_fetched == 1 and again.bytes_fetched == 2
    assert hub.counters()["cdn"]["requests"] == 0


def test_refs_written_by_an_older_version_do_not_count_as_public(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    body = os.urandom(100 * 1024)
    first = _repo(hub, {WEIGHTS: body})
    assert sync_repo(settings, first).ok
    old = published_refs(store, first).model_copy(update={"private": None, "gated": None})
    store.put_bytes(refs_key(first), old.to_json(), "application/json")
    second = _repo(hub, {WEIGHTS: body})
    hub.reset()
    result = sync_repo(settings, second)
    assert result.ok and result.bytes_fetched == len(body) and _body_requests(hub, second)
    assert sync_repo(settings, first).ok  # same commit: the next sync records the access all the same
    assert published_refs(store, first).restricted is False


def test_refs_record_access_and_follow_gating_flips_without_a_new_commit(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = _repo(hub, {"README.md": b"# flips\n", WEIGHTS: os.urandom(64 * 1024)})
    assert sync_repo(settings, repo).ok
    first = published_refs(store, repo)
    assert (first.private, first.gated, first.restricted) == (False, False, False)

    for access, expected in (({"gated": "manual"}, (False, "manual")), ({"private": True}, (True, "manual")),
                             ({"gated": False, "private": False}, (False, False))):
        hub.set_access("model", repo.repo_id, **access)
        hub.reset()
        result = sync_repo(settings, repo)
        refs = published_refs(store, repo)
        assert result.ok and result.bytes_fetched == 0 and hub.counters()["cdn"]["requests"] == 0
        assert (refs.private, refs.gated) == expected
        assert refs.restricted is (expected != (False, False))
        assert refs.branches == first.branches  # same commit, only the access changed


def test_repo_hidden_from_the_service_token_is_restricted_not_left_public(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = _repo(hub, {"README.md": b"# soon hidden\n"})
    assert sync_repo(settings, repo).ok
    assert published_refs(store, repo).restricted is False
    hub.set_access("model", repo.repo_id, private=True, service_denied=True)  # 404 RepoNotFound to our token
    result = sync_repo(settings, repo)
    assert not result.ok and not result.retryable
    refs = published_refs(store, repo)
    assert refs.private is True and refs.restricted is True
    assert refs.branches["main"] == hub.repo_record("model", repo.repo_id)["branches"]["main"]  # kept for grants


def test_gated_repo_the_token_loses_publishes_nothing_new_and_stays_restricted(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = _repo(hub, {"README.md": b"# gated\n", WEIGHTS: os.urandom(64 * 1024)}, gated="auto")
    assert sync_repo(settings, repo).ok
    old = published_refs(store, repo)
    assert old.gated == "auto" and old.restricted is True
    hub.set_access("model", repo.repo_id, service_denied=True)  # bodies now answer 403 GatedRepo
    hub.commit("model", repo.repo_id, {WEIGHTS: os.urandom(64 * 1024)})
    result = sync_repo(settings, repo)
    assert not result.ok and not result.retryable and "gated" in result.error.lower()
    refs = published_refs(store, repo)
    assert refs.branches == old.branches and refs.restricted is True


def test_public_index_is_read_once_per_sync_and_only_when_needed(hub, make, monkeypatch) -> None:
    import mirror_core.reuse

    listings: list[str] = []
    real = mirror_core.reuse.list_repos
    monkeypatch.setattr(mirror_core.reuse, "list_repos", lambda store: listings.append("repos/") or real(store))
    settings = make()
    shared = {f"{n}.safetensors": os.urandom(32 * 1024) for n in "abc"}
    assert sync_repo(settings, _repo(hub, shared)).ok
    assert listings == []  # nothing stored under those names yet: no need to ask who names them
    copy = _repo(hub, {**shared, "README.md": b"copy\n"})
    hub.reset()
    result = sync_repo(settings, copy)
    assert result.ok and result.files_reused == 3 and hub.counters()["cdn"]["requests"] == 0
    assert listings == ["repos/"]  # three shared bodies, one listing


def test_trending_refresh_restricts_a_mirrored_repo_that_turned_gated(hub, make) -> None:
    from mirror_core.trending import refresh_trending

    tag = f"trust-{uuid.uuid4().hex[:8]}"
    repo = RepoRef.parse(f"hubmirror-trust/{tag}")
    hub.create_repo("model", repo.repo_id, {"README.md": b"# trending\n"}, meta={"tags": [tag]})
    try:
        settings = make(selection={"trending": {"models": {"top": 1000, "tags": [tag]}}})
        store = Store(settings.s3)
        assert sync_repo(settings, repo).ok and published_refs(store, repo).restricted is False
        hub.set_access("model", repo.repo_id, gated="manual")  # include_gated is off: no sync would see it
        snapshot = refresh_trending(settings, store)
        verdict = next(c for c in snapshot.considered if c["id"] == repo.repo_id)
        assert not verdict["selected"] and verdict["restricted_in_mirror"]
        refs = published_refs(store, repo)
        assert refs.gated == "manual" and refs.restricted is True
        assert not refresh_trending(settings, store).repos  # already restricted: nothing rewritten
        assert published_refs(store, repo) == refs
    finally:  # out of every listing, so other tests' trending expectations stay as they were
        hub.set_access("model", repo.repo_id, private=True, service_denied=True)


def test_a_repo_turning_gated_stops_vouching_for_its_bodies_at_once(hub, make) -> None:
    settings = make()
    body = os.urandom(64 * 1024)
    source = _repo(hub, {WEIGHTS: body})
    assert sync_repo(settings, source).ok
    first = _repo(hub, {WEIGHTS: body})
    hub.reset()
    assert sync_repo(settings, first).bytes_reused == len(body) and not _body_requests(hub, first)
    hub.set_access("model", source.repo_id, gated="manual")
    assert sync_repo(settings, source).ok  # refs.json now says gated: the cached public index must not
    hub.set_access("model", first.repo_id, gated="manual")  # the earlier copy no longer vouches either
    assert sync_repo(settings, first).ok
    second = _repo(hub, {WEIGHTS: body})
    hub.reset()
    result = sync_repo(settings, second)
    assert result.ok and result.bytes_fetched == len(body) and _body_requests(hub, second)
