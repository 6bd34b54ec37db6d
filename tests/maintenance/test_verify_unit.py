"""verify on buckets built directly with layout/manifest/store: damage is found, rotation covers all."""

from __future__ import annotations

import hashlib

import pytest

from mirror_core.layout import VERIFY_CURSOR, RepoRef, blob_key, commit_key
from mirror_core.store import Store
from mirror_core.verify import pick_sample, verify
from tests.bucket import RepoBuilder, file_entry


def _repo(store: Store, files: dict[str, bytes], lfs: tuple[str, ...] = ()) -> RepoBuilder:
    builder = RepoBuilder(store, RepoRef.parse("org/verify-me"))
    builder.commit("c1", files, lfs=lfs)
    return builder


def test_clean_bucket_is_ok_and_every_body_is_hashed(bucket_settings, store):
    files = {f"f{i}.txt": f"body {i}".encode() * (i + 1) for i in range(5)}
    _repo(store, files, lfs=("f0.txt",))
    report = verify(bucket_settings, store, write_report=False)
    assert report.ok, report.to_dict()
    assert report.checked == 5 and report.blobs == 5
    assert report.bytes_checked == sum(len(b) for b in files.values())
    assert report.orphans == 0 and not report.bodies


def test_overwritten_and_deleted_bodies_are_found(bucket_settings, store):
    files = {"a.txt": b"alpha" * 10, "b.bin": b"bravo" * 20, "c.txt": b"charlie"}
    _repo(store, files, lfs=("b.bin",))
    a, b = (hashlib.sha256(files[p]).hexdigest() for p in ("a.txt", "b.bin"))
    store.put_bytes(blob_key(a), b"something else entirely")
    store.delete(blob_key(b))
    report = verify(bucket_settings, store, write_report=False)
    assert not report.ok
    assert {p.sha256 for p in report.corrupt} == {a}
    assert {p.sha256 for p in report.missing} == {b}
    [named] = report.missing[0].named_by
    assert named.startswith("model:org/verify-me@") and named.endswith(":b.bin")
    assert report.to_dict()["corrupt"] == 1 and report.to_dict()["missing"] == 1


def test_same_length_corruption_is_found(bucket_settings, store):
    data = b"0123456789" * 100
    _repo(store, {"x.bin": data})
    flipped = bytes([data[0] ^ 1]) + data[1:]
    store.put_bytes(blob_key(hashlib.sha256(data).hexdigest()), flipped)
    report = verify(bucket_settings, store, write_report=False)
    assert [p.problem for p in report.bodies] == ["corrupt"]
    assert "not its key" in report.bodies[0].detail


def test_git_blob_id_mismatch_is_found(bucket_settings, store):
    """A regular file's body must also match the git blob id the upstream published for it."""
    builder = RepoBuilder(store, RepoRef.parse("org/git-ids"))
    manifest = builder.commit("c1", {"r.txt": b"regular"})
    bad = manifest.model_copy(update={"files": [file_entry("r.txt", b"regular").model_copy(
        update={"oid": "0" * 40})]})
    store.put_bytes(commit_key(builder.repo, manifest.sha), bad.to_json())
    report = verify(bucket_settings, store, write_report=False)
    assert [p.problem for p in report.bodies] == ["corrupt"]
    assert "git blob id" in report.bodies[0].detail


def test_orphans_and_dangling_refs_are_reported(bucket_settings, store):
    builder = _repo(store, {"a.txt": b"kept"})
    orphan = b"nobody names me"
    store.put_bytes(blob_key(hashlib.sha256(orphan).hexdigest()), orphan)
    builder.set_ref("tags", "v1", "f" * 40)
    report = verify(bucket_settings, store, write_report=False)
    assert report.orphans == 1 and report.orphan_bytes == len(orphan)
    assert report.orphan_sample == [hashlib.sha256(orphan).hexdigest()]
    assert any("v1" in p and "f" * 40 in p for p in report.problems)
    assert not report.ok


def test_unreadable_manifest_is_reported(bucket_settings, store):
    builder = _repo(store, {"a.txt": b"x"})
    store.put_bytes(commit_key(builder.repo, "e" * 40), b"{not json")
    report = verify(bucket_settings, store, write_report=False)
    assert any(("e" * 40) in p for p in report.problems)
    assert not report.ok


def test_sampled_runs_rotate_over_every_body(bucket_settings, store):
    files = {f"f{i}.txt": f"rotating body {i}".encode() for i in range(10)}
    _repo(store, files)
    all_shas = sorted(hashlib.sha256(b).hexdigest() for b in files.values())
    seen: list[str] = []
    for _ in range(4):
        report = verify(bucket_settings, store, sample=3, write_report=False)
        assert report.ok and report.mode == "sample"
        seen.append(report.cursor["after"])
        assert report.checked == 3
    # 4 runs of 3 over 10 bodies: the first three runs cover 9, the fourth wraps around.
    assert seen[:3] == [all_shas[2], all_shas[5], all_shas[8]]
    cursor = store.get_json(VERIFY_CURSOR)
    assert cursor["wrapped"] is True and cursor["cycle"] == 1 and cursor["after"] == all_shas[1]


def test_sample_finds_damage_only_when_it_reaches_it_but_missing_always(bucket_settings, store):
    files = {f"f{i}.txt": f"sampled body {i}".encode() for i in range(6)}
    _repo(store, files)
    shas = sorted(hashlib.sha256(b).hexdigest() for b in files.values())
    same_length = store.get_bytes(blob_key(shas[4])).upper()
    store.put_bytes(blob_key(shas[4]), same_length)  # same size: only re-hashing can tell
    store.delete(blob_key(shas[0]))
    first = verify(bucket_settings, store, sample=2, write_report=False)
    # The listing alone reveals the missing body; the corrupt one is past this sample.
    assert [p.problem for p in first.bodies] == ["missing"]
    second = verify(bucket_settings, store, sample=2, write_report=False)
    assert {p.problem for p in second.bodies} == {"missing", "corrupt"}


def test_pick_sample_wraps_without_repeats():
    universe = [f"{i:02d}" for i in range(5)]
    assert pick_sample(universe, None, 2) == (["00", "01"], False)
    assert pick_sample(universe, "01", 2) == (["02", "03"], False)
    assert pick_sample(universe, "03", 3) == (["04", "00", "01"], True)
    assert pick_sample(universe, "04", 10) == (universe, True)
    assert pick_sample(universe, None, 10) == (universe, False)
    assert pick_sample([], "03", 3) == ([], False)


def test_truncated_body_is_found_by_every_sampled_run(bucket_settings, store):
    files = {f"f{i}.txt": f"body number {i}".encode() * 10 for i in range(6)}
    _repo(store, files)
    shas = sorted(hashlib.sha256(b).hexdigest() for b in files.values())
    original = store.get_bytes(blob_key(shas[5]))
    store.put_bytes(blob_key(shas[5]), original[:-3])
    report = verify(bucket_settings, store, sample=1, write_report=False)  # hashes shas[0] only
    assert [(p.sha256, p.problem) for p in report.bodies] == [(shas[5], "corrupt")]
    assert "bytes in the bucket" in report.bodies[0].detail


def test_report_is_written_under_state_runs(bucket_settings, store):
    _repo(store, {"a.txt": b"a"})
    report = verify(bucket_settings, store, run_id="manual__2026-01-01T00:00:00+00:00")
    assert report.report_key.startswith("state/runs/")
    stored = store.get_json(report.report_key)
    assert stored["kind"] == "verify" and stored["ok"] is True and stored["checked"] == 1


def test_repair_removes_a_corrupt_body_no_manifest_names(bucket_settings, store):
    """Wrong bytes under an unnamed content address would be trusted by a later sync's dedup: they go."""
    _repo(store, {"a.txt": b"named"})
    key = blob_key(hashlib.sha256(b"the real content").hexdigest())
    store.put_bytes(key, b"not the real content")
    found = verify(bucket_settings, store, write_report=False)
    assert [(p.problem, p.named_by) for p in found.bodies] == [("corrupt", [])] and not found.ok
    fixed = verify(bucket_settings, store, repair=True, write_report=False)
    assert fixed.ok and fixed.repaired == 1 and not store.exists(key)


def test_damaged_cursor_restarts_the_rotation(bucket_settings, store):
    files = {f"f{i}.txt": f"cursor body {i}".encode() for i in range(3)}
    _repo(store, files)
    store.put_bytes(VERIFY_CURSOR, b"[not a cursor")
    report = verify(bucket_settings, store, sample=2, write_report=False)
    assert report.ok and report.cursor["started_after"] is None and report.checked == 2


def test_named_bodies_only_are_rehashed_and_the_rotation_is_left_alone(bucket_settings, store):
    """serve flags a body whose proxied read failed its hash; the verify DAG re-hashes just that one."""
    files = {f"f{i}.txt": f"flagged body {i}".encode() for i in range(5)}
    _repo(store, files)
    shas = sorted(hashlib.sha256(b).hexdigest() for b in files.values())
    for sha in shas[1:3]:
        store.put_bytes(blob_key(sha), store.get_bytes(blob_key(sha)).upper())
    report = verify(bucket_settings, store, bodies=[shas[2], "f" * 64], write_report=False)
    assert report.mode == "bodies" and report.checked == 1
    assert [(p.sha256, p.problem) for p in report.bodies] == [(shas[2], "corrupt")]
    assert store.get_json(VERIFY_CURSOR) is None
    with pytest.raises(ValueError, match="sha256"):
        verify(bucket_settings, store, bodies=["../etc"], write_report=False)
