"""retention and gc on buckets built directly: what is kept, what goes, and what is never touched."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from mirror_core.gc import collect_garbage
from mirror_core.inventory import list_blobs, list_repos
from mirror_core.layout import RepoRef, blob_key, commit_key, refs_key
from mirror_core.retention import apply_retention
from mirror_core.settings import Settings
from mirror_core.store import Store
from tests.bucket import RepoBuilder

LATER = datetime.now(UTC) + timedelta(days=3)  # everything written by the test is older than the grace then


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _settings(settings: Settings, **retention) -> Settings:
    return settings.model_copy(update={"retention": settings.retention.model_copy(update=retention)})


def _history(store: Store, n: int = 5) -> RepoBuilder:
    """main: c0..c{n-1} (each with a unique body and a shared one); tag v0 on c0; a PR ref on a side commit."""
    builder = RepoBuilder(store, RepoRef.parse("org/history"))
    for i in range(n):
        builder.commit(f"c{i}", {"shared.txt": b"same in every commit", "weights.bin": f"w{i}".encode() * 50},
                       lfs=("weights.bin",))
    builder.set_ref("tags", "v0", builder.history["main"][-1])
    pr = builder.commit("pr1", {"shared.txt": b"same in every commit", "pr.txt": b"pr body"}, publish=False)
    builder.set_ref("pull_requests", "1", pr.sha)
    return builder


def _manifest_shas(store: Store, repo: RepoRef) -> set[str]:
    return set(list_repos(store).repos[repo].manifests)


def test_retention_keeps_last_k_per_branch_and_every_ref_target(bucket_settings, store):
    builder = _history(store)
    refs_before = store.get_bytes(refs_key(builder.repo))
    main = builder.history["main"]  # newest first
    report = apply_retention(_settings(bucket_settings, keep_last=2), store, now=LATER)
    assert report.ok, report.problems
    kept = _manifest_shas(store, builder.repo)
    assert kept == {main[0], main[1], main[-1], builder.refs.pull_requests["1"]}
    assert sorted(report.removed) == sorted(commit_key(builder.repo, s) for s in main[2:-1])
    assert store.get_bytes(refs_key(builder.repo)) == refs_before  # refs untouched


def test_retention_skips_commits_without_manifest_when_counting(bucket_settings, store):
    builder = _history(store)
    main = builder.history["main"]
    store.delete(commit_key(builder.repo, main[1]))  # e.g. a commit never mirrored
    apply_retention(_settings(bucket_settings, keep_last=2), store, now=LATER)
    assert {main[0], main[2]} <= _manifest_shas(store, builder.repo)
    assert main[3] not in _manifest_shas(store, builder.repo)


def test_retention_dry_run_and_grace_delete_nothing(bucket_settings, store):
    builder = _history(store)
    before = _manifest_shas(store, builder.repo)
    dry = apply_retention(_settings(bucket_settings, keep_last=1), store, dry_run=True, now=LATER)
    assert dry.removed and _manifest_shas(store, builder.repo) == before
    young = apply_retention(_settings(bucket_settings, keep_last=1), store)  # default grace: all are young
    assert not young.removed and len(young.young) == len(dry.removed)
    assert _manifest_shas(store, builder.repo) == before


def test_retention_keeps_everything_when_a_branch_head_is_broken(bucket_settings, store):
    builder = _history(store)
    store.delete(commit_key(builder.repo, builder.history["main"][0]))
    report = apply_retention(_settings(bucket_settings, keep_last=1), store, now=LATER)
    assert not report.ok and not report.removed
    assert "main" in report.problems[0]


def test_retention_removes_old_unpublished_manifests_only(bucket_settings, store):
    builder = RepoBuilder(store, RepoRef.parse("org/never-published"))
    builder.commit("c1", {"a.txt": b"a"}, publish=False)
    assert not apply_retention(bucket_settings, store).removed  # young: an in-flight first publish
    assert len(apply_retention(bucket_settings, store, now=LATER).removed) == 1


def test_gc_deletes_only_unreferenced_bodies_past_the_grace(bucket_settings, store):
    builder = _history(store)
    settings = _settings(bucket_settings, keep_last=2)
    apply_retention(settings, store, now=LATER)
    removed_bodies = {_sha256(f"w{i}".encode() * 50) for i in (1, 2)}  # c1, c2 went (c4, c3 newest, c0 tagged)
    blobs_before, _ = list_blobs(store)
    young = collect_garbage(settings, store)  # default grace: the fresh bodies are protected
    assert young.deleted == 0 and young.young == len(removed_bodies)
    dry = collect_garbage(settings, store, dry_run=True, now=LATER)
    assert {b["sha256"] for b in dry.deleted_blobs} == removed_bodies
    assert dry.bytes_reclaimed == sum(blobs_before[s].size for s in removed_bodies)
    assert list_blobs(store)[0].keys() == blobs_before.keys()
    report = collect_garbage(settings, store, now=LATER)
    assert report.ok and report.deleted == 2 and report.bytes_reclaimed == dry.bytes_reclaimed
    assert list_blobs(store)[0].keys() == blobs_before.keys() - removed_bodies
    assert report.missing == 0
    assert builder.refs.branches["main"] in _manifest_shas(store, builder.repo)


def test_gc_with_zero_grace_still_keeps_every_named_body(bucket_settings, store):
    _history(store)
    stray = b"uploaded by a sync that has not published yet"
    store.put_bytes(blob_key(_sha256(stray)), stray)
    blobs_before, _ = list_blobs(store)
    default = collect_garbage(bucket_settings, store)
    assert default.deleted == 0 and store.exists(blob_key(_sha256(stray)))
    report = collect_garbage(bucket_settings, store, grace_seconds=0)
    assert report.deleted == 1 and report.deleted_blobs[0]["sha256"] == _sha256(stray)
    assert list_blobs(store)[0].keys() == blobs_before.keys() - {_sha256(stray)}


def test_gc_deletes_nothing_if_a_manifest_is_unreadable(bucket_settings, store):
    builder = _history(store)
    stray = b"garbage"
    store.put_bytes(blob_key(_sha256(stray)), stray)
    store.put_bytes(commit_key(builder.repo, "d" * 40), b"{broken")
    report = collect_garbage(bucket_settings, store, grace_seconds=0)
    assert not report.ok and report.deleted == 0
    assert store.exists(blob_key(_sha256(stray)))


def test_gc_dry_run_honours_assumed_retention(bucket_settings, store):
    builder = _history(store)
    settings = _settings(bucket_settings, keep_last=1)
    plan = apply_retention(settings, store, dry_run=True, now=LATER)
    dry = collect_garbage(settings, store, dry_run=True, now=LATER, assume_removed=frozenset(plan.removed))
    # keep_last=1 keeps c4 (head), c0 (tag v0) and the PR commit: the weights of c1..c3 would go.
    assert {b["sha256"] for b in dry.deleted_blobs} == {_sha256(f"w{i}".encode() * 50) for i in (1, 2, 3)}
    assert len(_manifest_shas(store, builder.repo)) == 6  # dry runs removed nothing


def test_gc_marks_again_what_a_racing_publish_names(bucket_settings, store, monkeypatch):
    """A sync that publishes a manifest reusing an old unnamed body while gc runs keeps that body."""
    import mirror_core.gc as gc_module

    _history(store, n=2)
    orphan = b"old body a racing sync will reuse"
    store.put_bytes(blob_key(_sha256(orphan)), orphan)
    real_read_many = gc_module.read_many
    calls = []

    def read_many_then_publish(keys, reader, *args, **kwargs):
        result = real_read_many(keys, reader, *args, **kwargs)
        if not calls:  # after the first mark: a sync publishes a commit naming the orphan
            RepoBuilder(store, RepoRef.parse("org/racer")).commit("r1", {"reused.bin": orphan})
        calls.append(len(keys))
        return result

    monkeypatch.setattr(gc_module, "read_many", read_many_then_publish)
    report = collect_garbage(bucket_settings, store, now=LATER)
    assert len(calls) == 2 and calls[1] == 1  # the second mark read only the new manifest
    assert report.deleted == 0 and store.exists(blob_key(_sha256(orphan)))


def test_gc_aborts_uploads_a_killed_sync_left_unfinished(bucket_settings, store):
    """Parts of an upload nobody will complete take space forever unless gc aborts them."""
    key = blob_key(hashlib.sha256(b"never finished").hexdigest())
    upload_id = store.start_upload(key)
    store.upload_part(key, upload_id, 1, b"x" * (5 * 1024 * 1024))
    assert [u[:2] for u in store.list_uploads("blobs/")] == [(key, upload_id)]

    young = collect_garbage(bucket_settings, store, grace_seconds=3600, write_report=False)
    assert young.uploads_aborted == 0 and len(list(store.list_uploads("blobs/"))) == 1
    later = datetime.now(UTC) + timedelta(hours=2)
    dry = collect_garbage(bucket_settings, store, grace_seconds=3600, now=later, dry_run=True)
    assert dry.uploads_aborted == 1 and len(list(store.list_uploads("blobs/"))) == 1
    done = collect_garbage(bucket_settings, store, grace_seconds=3600, now=later, write_report=False)
    assert done.uploads_aborted == 1 and list(store.list_uploads("blobs/")) == []
    assert store.stat(key) is None
