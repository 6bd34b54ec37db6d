"""A read-only survey of the bucket shared by verify, retention, gc and the catalog.

Maintenance reasons over the whole bucket at once (which manifests exist, which bodies they name,
which bodies exist), so it lists `repos/` and `blobs/` once each instead of probing key by key,
and reads manifests in parallel because each one is a small, latency-bound S3 GET.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from mirror_core.errors import CorruptObjectError, InvalidInputError
from mirror_core.layout import (
    BLOBS_PREFIX,
    RepoRef,
    commit_key,
    refs_key,
    repo_from_key,
    repo_meta_key,
    repos_prefix,
    sha256_from_blob_key,
    sha_from_commit_key,
    unmirrored_key,
)
from mirror_core.manifest import CommitManifest, Refs
from mirror_core.store import ObjectInfo, Store

READ_WORKERS = 16
T = TypeVar("T")
M = TypeVar("M", CommitManifest, Refs)


@dataclass
class RepoObjects:
    """What the bucket holds for one repo: its refs.json (if published) and its manifests by sha."""

    repo: RepoRef
    refs: ObjectInfo | None = None
    meta: ObjectInfo | None = None  # the popularity snapshot (mirror_core.popularity)
    unmirrored: dict[str, ObjectInfo] = field(default_factory=dict)  # sha -> record of bodies left out
    manifests: dict[str, ObjectInfo] = field(default_factory=dict)

    def manifest_key(self, sha: str) -> str:
        return commit_key(self.repo, sha)


@dataclass
class RepoListing:
    repos: dict[RepoRef, RepoObjects]
    unexpected: list[str]  # keys under repos/ that layout v1 does not define

    @property
    def manifest_count(self) -> int:
        return sum(len(r.manifests) for r in self.repos.values())

    def manifest_keys(self) -> list[str]:
        return [r.manifest_key(sha) for r in self.repos.values() for sha in r.manifests]


def list_repos(store: Store) -> RepoListing:
    """Every repo with its refs.json and manifests, from one listing of `repos/`."""
    repos: dict[RepoRef, RepoObjects] = {}
    unexpected: list[str] = []
    for obj in store.list(repos_prefix()):
        try:
            repo = repo_from_key(obj.key)
            entry = repos.setdefault(repo, RepoObjects(repo))
            if obj.key == refs_key(repo):
                entry.refs = obj
            elif obj.key == repo_meta_key(repo):
                entry.meta = obj
            elif "/unmirrored/" in obj.key and obj.key == unmirrored_key(repo, sha := obj.key[-45:-5]):
                entry.unmirrored[sha] = obj
            elif commit_key(repo, sha := sha_from_commit_key(obj.key)) == obj.key:
                entry.manifests[sha] = obj
            else:
                unexpected.append(obj.key)
        except InvalidInputError:
            unexpected.append(obj.key)
    return RepoListing(repos, unexpected)


def list_blobs(store: Store) -> tuple[dict[str, ObjectInfo], list[str]]:
    """Every body by sha256, plus keys under blobs/ that are not well-formed blob keys."""
    blobs: dict[str, ObjectInfo] = {}
    unexpected: list[str] = []
    for obj in store.list(BLOBS_PREFIX):
        try:
            blobs[sha256_from_blob_key(obj.key)] = obj
        except InvalidInputError:
            unexpected.append(obj.key)
    return blobs, unexpected


def read_refs(store: Store, repo: RepoRef) -> Refs:
    """refs.json of a repo; raises CorruptObjectError naming the key if it is missing or malformed."""
    return _read(store, refs_key(repo), Refs)


def read_manifest(store: Store, key: str) -> CommitManifest:
    """One manifest; raises CorruptObjectError naming the key if it is missing or malformed."""
    return _read(store, key, CommitManifest)


def _read(store: Store, key: str, model: type[M]) -> M:
    data = store.get_bytes(key)
    if data is None:
        raise CorruptObjectError(f"{key} disappeared while being read")
    return model.from_json(data, key)


def read_many(keys: Iterable[str], reader: Callable[[str], T],
              workers: int = READ_WORKERS) -> tuple[dict[str, T], dict[str, str]]:
    """Read many small objects in parallel: (results by key, error message by key)."""
    keys = list(keys)
    results: dict[str, T] = {}
    errors: dict[str, str] = {}

    def one(key: str) -> None:
        try:
            results[key] = reader(key)
        except CorruptObjectError as exc:
            errors[key] = str(exc)

    if keys:
        with ThreadPoolExecutor(max_workers=min(workers, len(keys))) as pool:
            list(pool.map(one, keys))
    return results, errors

