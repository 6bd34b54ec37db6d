"""Independent checks of what a sync published: the real huggingface_hub client reads the fake hub,
hashlib re-hashes the bodies read back from SeaweedFS."""

from __future__ import annotations

import hashlib

from huggingface_hub import HfApi
from huggingface_hub.hf_api import RepoFile, RepoFolder

from mirror_core.hashing import git_blob_sha1
from mirror_core.layout import RepoRef, blob_key, commit_key, refs_key
from mirror_core.manifest import CommitManifest, Refs
from mirror_core.store import Store


def upstream_tree(hub, repo: RepoRef, sha: str) -> tuple[dict[str, tuple], dict[str, str]]:
    """{path: (size, oid, lfs sha256 or None)}, {dir: tree oid} as the upstream lists them at `sha`."""
    api = HfApi(endpoint=hub.url, token=hub.tokens["service"])
    files: dict[str, tuple] = {}
    dirs: dict[str, str] = {}
    for entry in api.list_repo_tree(repo.repo_id, recursive=True, revision=sha, repo_type=repo.singular_type):
        if isinstance(entry, RepoFile):
            files[entry.path] = (entry.size, entry.blob_id, entry.lfs.sha256 if entry.lfs else None)
        elif isinstance(entry, RepoFolder):
            dirs[entry.path] = entry.tree_id
    return files, dirs


def published_refs(store: Store, repo: RepoRef) -> Refs | None:
    raw = store.get_bytes(refs_key(repo))
    return Refs.from_json(raw) if raw is not None else None


def manifest(store: Store, repo: RepoRef, sha: str) -> CommitManifest | None:
    raw = store.get_bytes(commit_key(repo, sha))
    return CommitManifest.from_json(raw) if raw is not None else None


def assert_commit_mirrored(hub, store: Store, repo: RepoRef, sha: str) -> CommitManifest:
    """The manifest lists exactly the upstream tree at `sha`, and every body hashes to its key and to
    the upstream's hash (sha256 for LFS, git blob sha1 for regular files)."""
    found = manifest(store, repo, sha)
    assert found is not None, f"no manifest for {repo}@{sha}"
    files, dirs = upstream_tree(hub, repo, sha)
    assert {f.path: (f.size, f.oid, f.sha256 if f.lfs else None) for f in found.files} == files
    assert {d.path: d.oid for d in found.directories} == dirs
    assert found.sha == sha and found.info["id"] == repo.repo_id and found.info.get("sha") == sha
    assert found.commits and found.commits[0]["id"] == sha
    for entry in found.files:
        body = store.get_bytes(blob_key(entry.sha256))
        assert body is not None, f"body of {entry.path} missing"
        assert len(body) == entry.size
        assert hashlib.sha256(body).hexdigest() == entry.sha256
        if entry.lfs is None:
            assert git_blob_sha1(body) == entry.oid
    return found
