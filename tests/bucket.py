"""Publish small repos straight into a bucket, written the way the sync writes them.

For unit-level tests that need exact control over history, ages, damage or response shapes (serve's
shapes are checked against hashes the test computes itself). Bodies land first, then the commit manifest
with the upstream info trimmed by the sync's own `trim_info`, then refs.json with the access the sync
records (`access_of` the upstream info) and the popularity snapshot; every key comes from
mirror_core.layout. The end-to-end tests fill buckets through the real sync from the fake hub instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from mirror_core.access import access_of, with_access
from mirror_core.hashing import git_blob_sha1, sha256_hex
from mirror_core.layout import RepoRef, blob_key, commit_key, refs_key
from mirror_core.manifest import CommitManifest, DirEntry, FileEntry, LfsInfo, Refs
from mirror_core.popularity import write_meta
from mirror_core.store import Store
from mirror_core.sync import trim_info

UPSTREAM = "http://upstream.invalid"
DATE = "2024-01-02T03:04:05.000Z"


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def file_entry(path: str, data: bytes, *, lfs: bool = False) -> FileEntry:
    """The manifest entry of one body; an LFS file's git oid is that of its pointer, as on the Hub."""
    sha256 = sha256_hex(data)
    if not lfs:
        return FileEntry(path=path, size=len(data), sha256=sha256, oid=git_blob_sha1(data))
    pointer = lfs_pointer(sha256, len(data))
    return FileEntry(path=path, size=len(data), sha256=sha256, oid=git_blob_sha1(pointer),
                     lfs=LfsInfo(pointer_size=len(pointer)))


def upstream_info(repo: RepoRef, sha: str, info: dict[str, Any] | None) -> dict[str, Any]:
    """Repo info as the Hub answers it: `private` and `gated` are always there (public unless `info` says)."""
    return {"id": repo.repo_id, "sha": sha, "private": False, "gated": False, **(info or {})}


def put_commit(store: Store, repo: RepoRef, sha: str, files: dict[str, bytes], *, lfs: Collection[str] = (),
               info: dict[str, Any], commits: list[dict[str, Any]],
               directories: list[DirEntry] | None = None) -> CommitManifest:
    """Bodies first, then the manifest that lists them (never visible before a ref points at it)."""
    entries = []
    for path, data in sorted(files.items()):
        entry = file_entry(path, data, lfs=path in lfs)
        store.put_bytes(blob_key(entry.sha256), data)
        entries.append(entry)
    manifest = CommitManifest(repo_type=repo.type, repo_id=repo.repo_id, sha=sha, upstream=UPSTREAM,
                              info=trim_info(info), commits=commits, files=entries, directories=directories or [])
    store.put_bytes(commit_key(repo, sha), manifest.to_json(), "application/json")
    return manifest


def put_refs(store: Store, repo: RepoRef, refs: Refs, info: dict[str, Any]) -> Refs:
    """refs.json with the access the upstream info gives, in the same put (like the sync), and the snapshot."""
    refs = with_access(refs, access_of(info))
    store.put_bytes(refs_key(repo), refs.to_json(), "application/json")
    write_meta(store, repo, info, source="sync", upstream=UPSTREAM)
    return refs


@dataclass
class Published:
    repo: RepoRef
    sha: str
    files: dict[str, bytes]
    manifest: CommitManifest


def publish(store: Store, repo: RepoRef, files: dict[str, bytes], *, lfs: Collection[str] = frozenset(),
            info: dict | None = None, refs: Refs | None = None, branch: str = "main",
            seed: str = "0") -> Published:
    """One commit on `branch` (sha from repo, seed and paths), with its directories, in one call."""
    dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
    sha = hashlib.sha1(f"{repo}:{seed}:{sorted(files)}".encode()).hexdigest()
    full = upstream_info(repo, sha, {"lastModified": DATE, "tags": ["test"], "downloads": 3, "likes": 1,
                                     **(info or {})})
    manifest = put_commit(
        store, repo, sha, files, lfs=lfs, info=full,
        commits=[{"id": sha, "title": f"commit {seed}", "message": "", "date": DATE, "authors": [{"user": "alice"}]}],
        directories=[DirEntry(path=d, oid=hashlib.sha1(d.encode()).hexdigest()) for d in dirs])
    put_refs(store, repo, (refs or Refs(upstream=UPSTREAM)).with_ref("branches", branch, sha), full)
    return Published(repo, sha, files, manifest)


def fake_sha(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


@dataclass
class RepoBuilder:
    """Publishes commits of one repo with a history per branch (shas from labels), for retention/gc/verify."""

    store: Store
    repo: RepoRef
    history: dict[str, list[str]] = field(default_factory=dict)  # branch -> shas, newest first
    refs: Refs = field(default_factory=lambda: Refs(upstream=UPSTREAM))
    info: dict[str, Any] = field(default_factory=dict)  # the upstream info of the last published commit

    def commit(self, label: str, files: dict[str, bytes], *, branch: str = "main", lfs: tuple[str, ...] = (),
               info: dict | None = None, publish: bool = True) -> CommitManifest:
        sha = fake_sha(f"{self.repo}:{label}")
        log = [sha, *self.history.get(branch, [])]
        full = upstream_info(self.repo, sha, info)
        manifest = put_commit(self.store, self.repo, sha, files, lfs=lfs, info=full,
                              commits=[{"id": s, "title": f"commit {s[:7]}"} for s in log])
        if publish:
            self.history[branch], self.info = log, full
            self.set_ref("branches", branch, sha)
        return manifest

    def set_ref(self, kind: str, name: str, sha: str) -> None:
        self.refs = put_refs(self.store, self.repo, self.refs.with_ref(kind, name, sha),
                             self.info or upstream_info(self.repo, sha, None))
