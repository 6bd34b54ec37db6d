"""verify --repair against the fake hub: damaged bodies are found and restored, lost ones reported."""

from __future__ import annotations

from mirror_core.inventory import list_blobs
from mirror_core.layout import blob_key, commit_key
from mirror_core.manifest import CommitManifest
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from mirror_core.verify import verify
from tests.maintenance.conftest import PLAYGROUND, sha256

WEIGHTS = b"maintenance weights " * 4096  # ~80 KiB, stored as LFS
NOTES = b"plain text notes, a regular git file\n" * 20


def _mirror(settings, branch) -> tuple[Store, CommitManifest]:
    branch.commit({"weights.bin": WEIGHTS}, lfs=True)
    branch.commit({"notes.txt": NOTES}, lfs=False)
    result = sync_repo(settings, PLAYGROUND, [branch.name])
    assert result.ok, result.error
    store = Store(settings.s3)
    manifest = CommitManifest.from_json(store.get_bytes(commit_key(PLAYGROUND, branch.shas[-1])))
    return store, manifest


def _truth(fakehub, branch, path: str) -> dict:
    """The fake hub's own record of a file (independent of everything the mirror computed)."""
    return fakehub.file_record(PLAYGROUND.singular_type, PLAYGROUND.repo_id, path, branch.name)


def test_overwritten_bodies_are_found_and_restored(mirror_settings, fakehub, branch):
    store, manifest = _mirror(mirror_settings, branch)
    assert verify(mirror_settings, store).ok
    lfs, regular = _truth(fakehub, branch, "weights.bin"), _truth(fakehub, branch, "notes.txt")
    assert lfs["lfs"] and not regular["lfs"]
    store.put_bytes(blob_key(lfs["sha256"]), b"x" * len(WEIGHTS))  # same size, other bytes
    store.put_bytes(blob_key(regular["sha256"]), b"short")

    found = verify(mirror_settings, store)
    assert not found.ok
    assert {(b.sha256, b.problem) for b in found.bodies} == {(lfs["sha256"], "corrupt"),
                                                            (regular["sha256"], "corrupt")}

    repaired = verify(mirror_settings, store, repair=True)
    assert repaired.ok, repaired.to_dict()
    assert repaired.repaired == 2
    assert sha256(store.get_bytes(blob_key(lfs["sha256"]))) == lfs["sha256"]
    assert store.get_bytes(blob_key(regular["sha256"])) == NOTES and sha256(NOTES) == regular["sha256"]
    assert verify(mirror_settings, store).ok
    assert store.get_json(repaired.report_key)["repaired"] == 2


def test_deleted_body_is_found_and_restored(mirror_settings, fakehub, branch):
    store, _ = _mirror(mirror_settings, branch)
    truth = _truth(fakehub, branch, "weights.bin")
    store.delete(blob_key(truth["sha256"]))
    fakehub.reset()  # counters from here on: only the repair's traffic
    report = verify(mirror_settings, store, sample=1, repair=True)  # the listing finds missing bodies
    assert [(b.sha256, b.problem, b.repair) for b in report.bodies] == [(truth["sha256"], "missing", "repaired")]
    assert report.ok
    assert sha256(store.get_bytes(blob_key(truth["sha256"]))) == truth["sha256"]
    counters = fakehub.counters()
    assert truth["size"] <= counters["cdn"]["bytes"] + counters["resolve"]["bytes"] < 2 * truth["size"]
    assert any("weights.bin" in r["path"] for r in fakehub.requests())  # fetched again from the upstream


def test_body_the_upstream_lost_is_reported_never_dropped(mirror_settings, fakehub, branch):
    store, manifest = _mirror(mirror_settings, branch)
    truth = _truth(fakehub, branch, "notes.txt")
    store.delete(blob_key(truth["sha256"]))
    fakehub.set_faults({"action": "error", "kind": "resolve", "path": "notes.txt", "status": 404})
    report = verify(mirror_settings, store, repair=True)
    assert not report.ok
    [body] = report.bodies
    assert body.sha256 == truth["sha256"] and body.repair.startswith("unrecoverable"), body.repair
    assert store.get_bytes(commit_key(PLAYGROUND, manifest.sha)) is not None  # manifest kept as it was
    assert truth["sha256"] not in list_blobs(store)[0]
    stored = store.get_json(report.report_key)
    assert stored["unresolved"] == 1 and "unrecoverable" in stored["bodies"][0]["repair"]
    fakehub.reset()
    assert verify(mirror_settings, store, repair=True).ok  # the upstream has it again: repaired
