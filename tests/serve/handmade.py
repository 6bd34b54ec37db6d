"""Publish a tiny repo straight into a bucket, following layout v1, for serve's unit-level tests.

Independent of mirror_core.sync on purpose: it lets serve's response shapes be tested from hashes the
test computes itself. The end-to-end tests use buckets filled by the real sync from the fake hub.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mirror_core.layout import RepoRef, blob_key, commit_key, refs_key
from mirror_core.manifest import CommitManifest, DirEntry, FileEntry, LfsInfo, Refs
from mirror_core.store import Store


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class Published:
    repo: RepoRef
    sha: str
    files: dict[str, bytes]
    manifest: CommitManifest


def publish(store: Store, repo: RepoRef, files: dict[str, bytes], *, lfs: set[str] = frozenset(),
            info: dict | None = None, refs: Refs | None = None, branch: str = "main",
            seed: str = "0") -> Published:
    entries = []
    for path, data in sorted(files.items()):
        sha256 = hashlib.sha256(data).hexdigest()
        store.put_bytes(blob_key(sha256), data)
        if path in lfs:
            ptr = pointer(sha256, len(data))
            entries.append(FileEntry(path=path, size=len(data), sha256=sha256, oid=git_blob_sha1(ptr),
                                     lfs=LfsInfo(pointer_size=len(ptr))))
        else:
            entries.append(FileEntry(path=path, size=len(data), sha256=sha256, oid=git_blob_sha1(data)))
    dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
    sha = hashlib.sha1(f"{repo}:{seed}:{sorted(files)}".encode()).hexdigest()
    manifest = CommitManifest(
        repo_type=repo.type, repo_id=repo.repo_id, sha=sha, upstream="http://upstream.invalid",
        info={"id": repo.repo_id, "lastModified": "2024-01-02T03:04:05.000Z", "tags": ["test"],
              "downloads": 3, "likes": 1, **(info or {})},
        commits=[{"id": sha, "title": f"commit {seed}", "message": "", "date": "2024-01-02T03:04:05.000Z",
                  "authors": [{"user": "alice"}]}],
        files=entries,
        directories=[DirEntry(path=d, oid=hashlib.sha1(d.encode()).hexdigest()) for d in dirs],
    )
    store.put_bytes(commit_key(repo, sha), manifest.to_json())
    current = refs or Refs(upstream="http://upstream.invalid", private=bool((info or {}).get("private", False)),
                           gated=(info or {}).get("gated", False))
    store.put_bytes(refs_key(repo), current.with_ref("branches", branch, sha).to_json())
    return Published(repo, sha, files, manifest)
