"""sync_repo against the fake hub and a real SeaweedFS: verified, incremental, deduplicated, published last."""

from __future__ import annotations

import hashlib
import os

import pytest

from hubmirror.demohub.corpus import (
    BRANCHY_MODEL,
    DATASET,
    GATED_MODEL,
    LARGE_MODEL,
    PRIVATE_MODEL,
    SMALL_MODEL,
    XET_MODEL,
)
from mirror_core.errors import UpstreamAuthError
from mirror_core.layout import BLOBS_PREFIX, RepoRef, blob_key, commit_key, refs_key
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from tests.sync.helpers import assert_commit_mirrored, manifest, published_refs

MIB = 1024 * 1024


def test_first_sync_mirrors_exact_tree_with_verified_bodies(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = RepoRef.parse(SMALL_MODEL)
    result = sync_repo(settings, repo)
    assert result.ok, result.errors
    upstream_sha = hub.repo_record("model", SMALL_MODEL)["branches"]["main"]
    assert result.revisions == {"main": upstream_sha}
    refs = published_refs(store, repo)
    assert refs is not None and refs.branches == {"main": upstream_sha} and refs.upstream == hub.url
    found = assert_commit_mirrored(hub, store, repo, upstream_sha)
    lfs = [f for f in found.files if f.lfs]
    assert lfs and all(f.sha256 == hub.file_record("model", SMALL_MODEL, f.path)["sha256"] for f in found.files)
    body_bytes = sum(r["bytes"] for r in hub.requests()
                     if r["kind"] in ("resolve", "cdn") and r["status"] in (200, 206))
    assert result.bytes_fetched == body_bytes == sum(f.size for f in found.files)
    assert result.files == len(found.files) and result.files_fetched == len(found.files)
    report = store.get_json(result.report_key)
    assert report["kind"] == "sync" and report["repos"][0]["revisions"] == {"main": upstream_sha}


def test_second_sync_downloads_nothing_and_makes_one_metadata_call(hub, make) -> None:
    settings = make()
    repo = RepoRef.parse(SMALL_MODEL)
    assert sync_repo(settings, repo).ok
    hub.reset()
    again = sync_repo(settings, repo)
    counters = hub.counters()
    assert again.ok and again.skipped and again.bytes_fetched == 0
    assert counters["resolve"]["requests"] == counters["cdn"]["requests"] == 0
    # invariant 4: the repo info at `main` names the published sha and carries access and popularity
    assert counters["api"]["requests"] == again.metadata_calls == 1
    forced = sync_repo(settings, repo, force=True)  # re-lists, re-checks: still no body bytes
    assert forced.ok and forced.bytes_fetched == 0 and hub.counters()["cdn"]["bytes"] == 0
    assert hub.counters()["resolve"]["bytes"] == 0


def test_changed_file_fetches_only_that_body_and_keeps_old_commit(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = RepoRef.parse(BRANCHY_MODEL)
    branch = f"sync-{os.urandom(4).hex()}"
    old_sha = hub.commit("model", BRANCHY_MODEL, {"big.bin": os.urandom(6 * MIB)}, branch=branch, lfs=True)
    assert sync_repo(settings, repo, [branch]).ok
    hub.reset()
    new_body = b'{"model_type": "bert", "version": 99}\n'
    new_sha = hub.commit("model", BRANCHY_MODEL, {"config.json": new_body}, branch=branch)
    result = sync_repo(settings, repo, [branch])
    assert result.ok and result.revisions == {branch: new_sha}
    body_gets = [r for r in hub.requests() if r["kind"] in ("resolve", "cdn")]
    assert [r["path"].rsplit("/", 1)[-1] for r in body_gets] == ["config.json"]
    assert result.bytes_fetched == len(new_body) and result.files_fetched == 1
    assert published_refs(store, repo).branches[branch] == new_sha
    assert_commit_mirrored(hub, store, repo, new_sha)
    old = assert_commit_mirrored(hub, store, repo, old_sha)  # still resolvable by sha, bodies intact
    assert old.file("config.json").sha256 != manifest(store, repo, new_sha).file("config.json").sha256


def test_same_body_in_two_repos_and_two_paths_is_stored_once(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    body = os.urandom(6 * MIB + 3)
    branch = f"dedup-{os.urandom(4).hex()}"
    hub.commit("model", BRANCHY_MODEL, {"a/weights.bin": body, "b/copy.bin": body}, branch=branch, lfs=True)
    hub.commit("model", "tinygpt", {"same.bin": body}, branch=branch, lfs=True)
    sha256 = hashlib.sha256(body).hexdigest()
    first = sync_repo(settings, RepoRef.parse(BRANCHY_MODEL), [branch])
    assert first.ok
    gets = [r for r in hub.requests() if r["kind"] == "cdn" and sha256 in r["path"]]
    assert sum(g["bytes"] for g in gets) == len(body)  # two paths, one download (in ranged parts)
    hub.reset()
    second = sync_repo(settings, RepoRef.parse("tinygpt"), [branch])
    assert second.ok and second.bytes_reused >= len(body)
    assert not [r for r in hub.requests() if r["kind"] == "cdn" and sha256 in r["path"]]
    key = blob_key(sha256)
    assert [o.key for o in store.list(BLOBS_PREFIX) if o.key == key] == [key]
    for repo_id in (BRANCHY_MODEL, "tinygpt"):
        sha = published_refs(store, RepoRef.parse(repo_id)).branches[branch]
        assert_commit_mirrored(hub, store, RepoRef.parse(repo_id), sha)


def test_branches_tags_and_globs(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = RepoRef.parse(BRANCHY_MODEL)
    record = hub.repo_record("model", BRANCHY_MODEL)
    result = sync_repo(settings, repo, ["main", "v1.0", "feature/*", "refs/pr/1"])
    assert result.ok, result.errors
    refs = published_refs(store, repo)
    assert refs.branches == {"main": record["branches"]["main"], "feature/x": record["branches"]["feature/x"]}
    assert refs.tags == {"v1.0": record["tags"]["v1.0"]}
    assert refs.pull_requests == {"1": record["pull_requests"]["1"]}
    for sha in refs.all_shas():
        assert_commit_mirrored(hub, store, repo, sha)
    missing = sync_repo(settings, repo, ["no-such-branch"])
    assert not missing.ok and "no-such-branch" in missing.error


def test_dataset_gets_its_parquet_convert(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = RepoRef.parse(DATASET, "dataset")
    result = sync_repo(settings, repo)
    assert result.ok, result.errors
    record = hub.repo_record("dataset", DATASET)
    refs = published_refs(store, repo)
    assert refs.converts == record["converts"] and refs.branches["main"] == record["branches"]["main"]
    assert_commit_mirrored(hub, store, repo, record["converts"]["parquet"])
    assert_commit_mirrored(hub, store, repo, record["branches"]["main"])


def test_xet_backed_files_come_through_plain_http(hub, make) -> None:
    settings = make()
    result = sync_repo(settings, RepoRef.parse(XET_MODEL))
    assert result.ok, result.errors
    sha = hub.repo_record("model", XET_MODEL)["branches"]["main"]
    assert_commit_mirrored(hub, Store(settings.s3), RepoRef.parse(XET_MODEL), sha)


def test_gated_and_private_need_a_token_that_can_read_them(hub, make) -> None:
    for repo_id in (GATED_MODEL, PRIVATE_MODEL):
        settings = make(token="no_access")
        result = sync_repo(settings, RepoRef.parse(repo_id))
        assert not result.ok and result.error
        assert not result.retryable  # Airflow fails the task at once instead of retrying
        assert published_refs(Store(settings.s3), RepoRef.parse(repo_id)) is None
        assert sync_repo(make(token="service"), RepoRef.parse(repo_id)).ok
    assert "gated" in sync_repo(make(token=None), RepoRef.parse(GATED_MODEL)).error.lower()


def test_refused_token_is_raised_for_fail_fast(hub, make, s3_server) -> None:
    from tests.conftest import make_settings

    bad = make_settings(s3_server, make().s3_bucket, upstream_url=hub.url, upstream_token="hf_not_a_valid_token")
    with pytest.raises(UpstreamAuthError, match="token"):
        sync_repo(bad, RepoRef.parse(SMALL_MODEL))


def test_redirect_to_unlisted_host_is_refused(hub, make) -> None:
    settings = make(allowed_redirect_hosts=[])
    store = Store(settings.s3)
    result = sync_repo(settings, RepoRef.parse(LARGE_MODEL))
    assert not result.ok and "allowed_redirect_hosts" in result.error
    assert published_refs(store, RepoRef.parse(LARGE_MODEL)) is None
    assert hub.counters()["cdn"]["requests"] == 0


def test_hf_transfer_engine_verifies_and_uploads(hub, make) -> None:
    settings = make(engine="hf_transfer", hf_transfer_threshold=0)
    repo = RepoRef.parse(LARGE_MODEL)
    result = sync_repo(settings, repo)
    assert result.ok, result.errors
    sha = hub.repo_record("model", LARGE_MODEL)["branches"]["main"]
    assert_commit_mirrored(hub, Store(settings.s3), repo, sha)
    ranges = sorted(r["range"] for r in hub.requests() if r["kind"] == "cdn" and r["bytes"] > 1)
    assert len(ranges) >= 4 and f"bytes=0-{10 * MIB - 1}" in ranges  # hf_transfer's 10 MiB chunks, in parallel


def test_stream_engine_for_a_large_file(hub, make) -> None:
    settings = make(engine="stream")
    repo = RepoRef.parse(LARGE_MODEL)
    result = sync_repo(settings, repo)
    assert result.ok, result.errors
    sha = hub.repo_record("model", LARGE_MODEL)["branches"]["main"]
    assert_commit_mirrored(hub, Store(settings.s3), repo, sha)
    assert Store(settings.s3).stat(commit_key(repo, sha)) is not None
    assert Store(settings.s3).stat(refs_key(repo)) is not None


def test_paged_tree_and_commit_log_are_followed(hub, make) -> None:
    hub.configure(tree_page_size=2, commits_page_size=1)
    settings = make()
    repo = RepoRef.parse(BRANCHY_MODEL)
    result = sync_repo(settings, repo)
    assert result.ok, result.errors
    sha = hub.repo_record("model", BRANCHY_MODEL)["branches"]["main"]
    found = assert_commit_mirrored(hub, Store(settings.s3), repo, sha)
    assert len(found.files) > 2
    pages = [r["path"] for r in hub.requests() if r["kind"] == "api"]
    assert len([p for p in pages if "/tree/" in p]) >= 3 and len([p for p in pages if "/commits/" in p]) >= 3
    from huggingface_hub import HfApi

    log = HfApi(endpoint=hub.url, token=hub.tokens["service"]).list_repo_commits(BRANCHY_MODEL, revision=sha)
    assert [c["id"] for c in found.commits] == [c.commit_id for c in log]


def test_progress_reports_every_body_byte(hub, make) -> None:
    import io

    from rich.console import Console
    from rich.progress import Progress

    class Recording(Progress):
        def __init__(self) -> None:
            super().__init__(console=Console(file=io.StringIO()))
            self.advanced: dict[str, int] = {}

        def update(self, task_id, *, advance=None, **kwargs) -> None:
            name = self._tasks[task_id].description
            self.advanced[name] = self.advanced.get(name, 0) + (advance or 0)
            super().update(task_id, advance=advance, **kwargs)

    progress = Recording()
    with progress:
        result = sync_repo(make(), RepoRef.parse(LARGE_MODEL), progress=progress)
    assert result.ok
    size = hub.file_record("model", LARGE_MODEL, "pytorch_model.bin")["size"]
    assert progress.advanced[f"model:{LARGE_MODEL}"] == result.bytes_fetched + result.bytes_reused
    assert progress.advanced["  pytorch_model.bin"] == size
    assert not progress.tasks  # finished bars are removed


def test_a_corrupt_refs_json_is_reported_as_the_bucket_s_fault_and_left_alone(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = RepoRef.parse(SMALL_MODEL)
    store.put_bytes(refs_key(repo), b'{"branches": {"main": "not-a-sha"}}')
    result = sync_repo(settings, repo, force=True)
    assert not result.ok
    assert f"{refs_key(repo)} is not a valid refs.json" in result.error and "upstream sent" not in result.error
    assert store.get_bytes(refs_key(repo)) == b'{"branches": {"main": "not-a-sha"}}'  # nothing published over it
