"""Build small published repos directly with mirror_core's layout, manifest and store code.

For unit-level tests of verify/retention/gc/catalog that need exact control over history, ages
and damage; the integration tests fill buckets through the real sync from fakehub instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from mirror_core.hashing import git_blob_sha1
from mirror_core.layout import RepoRef, blob_key, commit_key, refs_key
from mirror_core.manifest import CommitManifest, FileEntry, LfsInfo, Refs
from mirror_core.store import Store

UPSTREAM = "http://127.0.0.1:1"


def body_entry(path: str, data: bytes, lfs: bool = False) -> FileEntry:
    return FileEntry(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     oid=git_blob_sha1(data if not lfs else b"pointer " + data),
                     lfs=LfsInfo(pointer_size=134) if lfs else None)


def fake_sha(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


@dataclass
class RepoBuilder:
    """Publishes commits of one repo: blobs first, then the manifest, then refs (like sync)."""

    store: Store
    repo: RepoRef
    history: dict[str, list[str]] = field(default_factory=dict)  # branch -> shas, newest first
    refs: Refs = field(default_factory=lambda: Refs(upstream=UPSTREAM))

    def commit(self, label: str, files: dict[str, bytes], *, branch: str = "main", lfs: tuple[str, ...] = (),
               info: dict | None = None, publish: bool = True) -> CommitManifest:
        sha = fake_sha(f"{self.repo}:{label}")
        entries = []
        for path, data in files.items():
            entry = body_entry(path, data, lfs=path in lfs)
            self.store.put_bytes(blob_key(entry.sha256), data)
            entries.append(entry)
        log = [sha, *self.history.get(branch, [])]
        manifest = CommitManifest(repo_type=self.repo.type, repo_id=self.repo.repo_id, sha=sha,
                                  info={"id": self.repo.repo_id, "sha": sha, **(info or {})},
                                  commits=[{"id": s, "title": f"commit {s[:7]}"} for s in log],
                                  files=entries, upstream=UPSTREAM)
        self.store.put_bytes(commit_key(self.repo, sha), manifest.to_json(), "application/json")
        if publish:  # access recorded like sync records it: from the upstream's info
            self.history[branch] = log
            self.refs = self.refs.model_copy(update={"private": bool(manifest.info.get("private", False)),
                                                     "gated": manifest.info.get("gated", False)})
            self.set_ref("branches", branch, sha)
        return manifest

    def set_ref(self, kind: str, name: str, sha: str) -> None:
        self.refs = self.refs.with_ref(kind, name, sha)
        self.store.put_bytes(refs_key(self.repo), self.refs.to_json(), "application/json")
