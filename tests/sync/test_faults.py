"""Under injected faults a sync completes correctly or fails without publishing; never a wrong body."""

from __future__ import annotations

import hashlib
import os

import pytest

import mirror_core.sync as sync_module
from hubmirror.demohub.corpus import BRANCHY_MODEL, LARGE_MODEL, SMALL_MODEL
from mirror_core.layout import BLOBS_PREFIX, RepoRef, blob_key, commit_key, refs_key
from mirror_core.manifest import Refs
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from tests.sync.helpers import assert_commit_mirrored, published_refs

MIB = 1024 * 1024


def _large(hub) -> tuple[RepoRef, str, dict]:
    record = hub.file_record("model", LARGE_MODEL, "pytorch_model.bin")
    return RepoRef.parse(LARGE_MODEL), record["commit"], record


def _stored_blobs(store: Store) -> set[str]:
    return {o.key for o in store.list(BLOBS_PREFIX)}


def test_dropped_connections_mid_lfs_resume_each_part_with_range(hub, make) -> None:
    settings = make(engine="stream")
    repo, sha, record = _large(hub)
    cut = 3 * MIB + 5  # inside one 5 MiB part
    hub.set_faults({"action": "drop", "kind": "cdn", "after_bytes": cut, "count": 2})
    result = sync_repo(settings, repo)
    assert result.ok, result.errors
    assert_commit_mirrored(hub, Store(settings.s3), repo, sha)
    gets = [r for r in hub.requests() if r["kind"] == "cdn"]
    dropped = [g for g in gets if g["fault"] == "drop"]
    assert len(dropped) == 2
    for g in dropped:  # each broken part was asked again from the byte where it broke
        first, last = g["range"].removeprefix("bytes=").split("-")
        assert f"bytes={int(first) + cut}-{last}" in [r["range"] for r in gets]
    assert sum(g["bytes"] for g in gets) == record["size"]  # nothing downloaded twice


def test_dropped_connection_on_a_regular_file_resumes(hub, make) -> None:
    settings = make()
    repo, sha, _ = _large(hub)
    readme = hub.file_record("model", LARGE_MODEL, "README.md")
    hub.set_faults({"action": "drop", "kind": "resolve", "path": "README.md", "after_bytes": 10, "count": 2})
    result = sync_repo(settings, repo)
    assert result.ok, result.errors
    gets = [r for r in hub.requests() if r["kind"] == "resolve" and r["path"].endswith("README.md")]
    assert [g["range"] for g in gets] == [None, "bytes=10-", "bytes=20-"]
    assert sum(g["bytes"] for g in gets) == readme["size"]
    assert_commit_mirrored(hub, Store(settings.s3), repo, sha)


def test_5xx_and_429_are_retried(hub, make) -> None:
    settings = make()
    repo = RepoRef.parse(SMALL_MODEL)
    hub.set_faults({"action": "error", "kind": "api", "status": 503, "count": 2},
                   {"action": "error", "kind": "resolve", "status": 502, "count": 1},
                   {"action": "error", "kind": "cdn", "status": 500, "count": 1},
                   {"action": "rate_limit", "kind": "resolve", "path": "config.json", "retry_after": 1, "count": 1})
    result = sync_repo(settings, repo)
    assert result.ok, result.errors
    assert all(f["fired"] >= 1 for f in hub.faults())
    config = [r for r in hub.requests() if r["kind"] == "resolve" and r["path"].endswith("/config.json")]
    limited = next(i for i, r in enumerate(config) if r["status"] == 429)
    assert config[limited + 1]["at"] - config[limited]["at"] >= 1.0  # the Retry-After second was waited for
    assert_commit_mirrored(hub, Store(settings.s3), repo, hub.repo_record("model", SMALL_MODEL)["branches"]["main"])


def test_persistent_rate_limit_fails_without_publishing(hub, make) -> None:
    settings = make(max_retries=2, max_wait=0.2)
    hub.set_faults({"action": "rate_limit", "kind": "api", "retry_after": 1})
    result = sync_repo(settings, RepoRef.parse(SMALL_MODEL))
    assert not result.ok and "429" in result.error
    assert result.retryable  # a later Airflow retry may well get through
    assert published_refs(Store(settings.s3), RepoRef.parse(SMALL_MODEL)) is None


def _corrupted(hub, kind: str) -> int:
    """Responses of `kind` whose body the fake hub actually altered (a rule can fire on a request whose body
    never reaches its offset, so the rule's own `fired` counter alone does not prove a corrupt byte was sent)."""
    return sum(1 for r in hub.requests() if r["kind"] == kind and r["fault"] == "corrupt")


@pytest.mark.parametrize("kind,path", [("cdn", None), ("resolve", "config.json")])
def test_corrupted_byte_is_never_published(hub, make, kind: str, path: str | None) -> None:
    settings = make(engine="stream")
    store = Store(settings.s3)
    repo = RepoRef.parse(LARGE_MODEL)
    hub.set_faults({"action": "corrupt", "kind": kind, "path": path, "offset": 3})
    result = sync_repo(settings, repo)
    assert _corrupted(hub, kind) >= 1, "the fault never flipped a byte: this test proved nothing"
    assert not result.ok
    assert "sha256" in result.error if kind == "cdn" else "git blob sha1" in result.error
    assert store.stat(refs_key(repo)) is None
    sha = hub.repo_record("model", LARGE_MODEL)["branches"]["main"]
    assert store.stat(commit_key(repo, sha)) is None
    target = "pytorch_model.bin" if kind == "cdn" else "config.json"
    record = hub.file_record("model", LARGE_MODEL, target)
    assert store.stat(blob_key(record["sha256"])) is None
    for key in _stored_blobs(store):  # whatever was stored is a correct body
        assert hashlib.sha256(store.get_bytes(key)).hexdigest() == key.rsplit("/", 1)[-1]


def test_corruption_once_is_refetched(hub, make) -> None:
    settings = make(engine="stream")
    repo, sha, _ = _large(hub)
    hub.set_faults({"action": "corrupt", "kind": "cdn", "count": 1})
    result = sync_repo(settings, repo)
    assert [f["fired"] for f in hub.faults()] == [1] and _corrupted(hub, "cdn") == 1  # one body really was bad
    assert result.ok, result.errors
    assert_commit_mirrored(hub, Store(settings.s3), repo, sha)


def test_expired_cdn_signature_is_re_resolved_then_fails_cleanly(hub, make) -> None:
    settings = make(max_retries=2)
    hub.configure(cdn_ttl=-10)
    result = sync_repo(settings, RepoRef.parse(LARGE_MODEL))
    assert not result.ok and "refused the signed URL" in result.error
    assert published_refs(Store(settings.s3), RepoRef.parse(LARGE_MODEL)) is None


def test_crash_between_upload_and_ref_flip_keeps_old_state_and_next_run_completes(hub, make, monkeypatch) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = RepoRef.parse(BRANCHY_MODEL)
    branch = f"crash-{os.urandom(4).hex()}"
    old_sha = hub.commit("model", BRANCHY_MODEL, {"w.bin": os.urandom(MIB)}, branch=branch, lfs=True)
    assert sync_repo(settings, repo, [branch]).ok
    new_body = os.urandom(6 * MIB)
    new_sha = hub.commit("model", BRANCHY_MODEL, {"w.bin": new_body}, branch=branch, lfs=True)

    def killed(*args, **kwargs):
        raise SystemExit("killed before the ref flip")

    monkeypatch.setattr(sync_module, "publish_refs", killed)
    with pytest.raises(SystemExit):
        sync_repo(settings, repo, [branch])
    assert published_refs(store, repo).branches[branch] == old_sha  # readers still see the old commit
    assert_commit_mirrored(hub, store, repo, old_sha)
    assert store.stat(blob_key(hashlib.sha256(new_body).hexdigest())) is not None  # the body got in

    monkeypatch.undo()
    hub.reset()
    again = sync_repo(settings, repo, [branch])
    assert again.ok and again.bytes_fetched == 0 and hub.counters()["cdn"]["bytes"] == 0
    assert published_refs(store, repo).branches[branch] == new_sha
    assert_commit_mirrored(hub, store, repo, new_sha)


def test_concurrent_publish_is_refused(hub, make, monkeypatch) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = RepoRef.parse(SMALL_MODEL)
    original = sync_module.publish_refs
    other = Refs(upstream="http://other-writer", branches={"main": "f" * 40})

    def racing(store_, repo_, refs, expected):
        store_.put_bytes(refs_key(repo_), other.to_json())  # another sync published meanwhile
        return original(store_, repo_, refs, expected)

    monkeypatch.setattr(sync_module, "publish_refs", racing)
    result = sync_repo(settings, repo)
    assert not result.ok and "changed while" in result.error
    assert published_refs(store, repo) == other  # the other writer's publish is intact


def test_publish_racing_inside_the_check_is_refused(hub, make, monkeypatch) -> None:
    """Another writer landing between our read of refs.json and our write: the conditional PUT loses."""
    settings = make()
    store = Store(settings.s3)
    repo = RepoRef.parse(SMALL_MODEL)
    other = Refs(upstream="http://other-writer", branches={"main": "e" * 40})
    original = Store.put_if

    def late_other_writer(self, key, data, etag, *args):
        Store.put_bytes(self, key, other.to_json())  # lands after our check, before our write
        return original(self, key, data, etag, *args)

    monkeypatch.setattr(Store, "put_if", late_other_writer)
    result = sync_repo(settings, repo)
    assert not result.ok and "changed while" in result.error
    assert published_refs(store, repo) == other
