"""One manifest per commit whatever the allow/ignore patterns; what the patterns left out is recorded apart,
completed by a wider sync, and answered by serve as a clear "not mirrored" 404."""

from __future__ import annotations

import uuid

from starlette.testclient import TestClient

from mirror_core.layout import RepoRef, blob_key, commit_key, unmirrored_key
from mirror_core.manifest import CommitManifest
from mirror_core.mirrored import read_unmirrored
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from mirror_core.verify import verify
from serve.app import create_app
from serve.config import load_serve_settings
from tests.sync.helpers import assert_commit_mirrored, upstream_tree

FILES = {"README.md": b"# d\n", "config.json": b'{"a": 1}', "sub/notes.txt": b"n\n",
         "model.safetensors": b"S" * 3000, "pytorch_model.bin": b"B" * 2000}
LFS = {"model.safetensors", "pytorch_model.bin"}
NARROW = ["*.json", "*.md", "*.safetensors"]


def _whole(manifest: CommitManifest) -> dict:
    return manifest.model_dump(exclude={"created_at"})


def test_filtered_full_filtered_keeps_one_whole_manifest(hub, make) -> None:
    repo = RepoRef.parse(f"determinism-{uuid.uuid4().hex[:8]}/m")
    sha = hub.create_repo("model", repo.repo_id, FILES)
    settings = make()
    store = Store(settings.s3)

    narrow = sync_repo(settings, repo, allow_patterns=NARROW, write_report=False)
    assert narrow.ok and narrow.revisions["main"] == sha
    raw = store.get_bytes(commit_key(repo, sha))
    manifest = CommitManifest.from_json(raw)
    files, dirs = upstream_tree(hub, repo, sha)
    assert {f.path: (f.size, f.oid, f.sha256 if f.lfs else None) for f in manifest.files} == files
    assert {d.path: d.oid for d in manifest.directories} == dirs
    assert read_unmirrored(store, repo, sha) == {"pytorch_model.bin"}
    assert not store.exists(blob_key(manifest.file("pytorch_model.bin").sha256))
    assert verify(settings, store=store, write_report=False).ok  # a left-out body is not a missing one

    client = TestClient(create_app(load_serve_settings(s3=settings.s3)))
    left_out = client.get(f"/{repo.repo_id}/resolve/main/pytorch_model.bin")
    assert (left_out.status_code, left_out.headers["x-error-code"]) == (404, "EntryNotFound")
    assert "not mirrored" in left_out.json()["error"] and "x-repo-commit" not in left_out.headers
    assert client.get(f"/{repo.repo_id}/resolve/main/model.safetensors").content == FILES["model.safetensors"]
    assert client.get(f"/{repo.repo_id}/resolve/main/sub/notes.txt").status_code == 200  # regular: always kept

    full = sync_repo(settings, repo, write_report=False)
    assert full.ok and not full.skipped and full.files_fetched == 1
    assert store.get_bytes(commit_key(repo, sha)) == raw  # the manifest never changes
    assert not store.exists(unmirrored_key(repo, sha))
    assert_commit_mirrored(hub, store, repo, sha)

    again = sync_repo(settings, repo, allow_patterns=["*.json"], write_report=False)
    assert again.ok and again.skipped and again.bytes_fetched == 0
    assert store.get_bytes(commit_key(repo, sha)) == raw and not store.exists(unmirrored_key(repo, sha))
    assert [o.key for o in store.list(f"repos/models/{repo.namespace}/{repo.name}/commits/")] == [
        commit_key(repo, sha)]

    other = make()  # the same commit synced full-first into another bucket: the same manifest
    assert sync_repo(other, repo, write_report=False).ok
    assert _whole(CommitManifest.from_json(Store(other.s3).get_bytes(commit_key(repo, sha)))) == _whole(manifest)


def test_cli_sync_of_a_named_repo_applies_its_configured_patterns(hub, make) -> None:
    import argparse

    from hubmirror.sync_cli import run_sync

    repo = RepoRef.parse(f"determinism-{uuid.uuid4().hex[:8]}/cli")
    sha = hub.create_repo("model", repo.repo_id, FILES)
    settings = make(selection={"repos": [{"id": repo.repo_id, "allow_patterns": NARROW}]})
    args = argparse.Namespace(repo_ids=[repo.repo_id], type="model", revision=None, all=False, force=False)
    assert run_sync(args, settings) == 0
    assert read_unmirrored(Store(settings.s3), repo, sha) == {"pytorch_model.bin"}
    assert Store(settings.s3).get_json("state/catalog/latest.json")["repos"] == 1  # the CLI rebuilds the catalog
