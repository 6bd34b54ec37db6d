"""What serve knows about the bucket: refs.json behind a short TTL, manifests in a bounded LRU.

Manifests are immutable (a sha names one forever), so they are cached until evicted; refs.json is the
only mutable object, so a replica sees a new publish within `refs_ttl` seconds. Once warm, a HEAD on
/resolve is dict lookups only: no S3 call, no thread hop. Loads of the same key are coalesced so a burst
of cold requests makes one S3 read.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio

from mirror_core.errors import CorruptObjectError, InvalidInputError, StorageError
from mirror_core.layout import (
    RepoRef,
    commit_key,
    commits_prefix,
    is_commit_sha,
    refs_key,
    sha_from_commit_key,
)
from mirror_core.manifest import CommitManifest, DirEntry, FileEntry, Refs, resolve_short_sha
from mirror_core.mirrored import read_unmirrored
from mirror_core.store import Store
from serve import metrics
from serve.errors import RevisionNotFound, ServiceUnavailable

log = logging.getLogger("hubmirror.serve.state")
T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
Entry = FileEntry | DirEntry


def _synthetic_tree_oid(path: str) -> str:
    """A stable stand-in for a directory oid the manifest did not record (filtered syncs)."""
    return hashlib.sha1(f"hubmirror-tree:{path}".encode()).hexdigest()


@dataclass
class ManifestView:
    """A manifest plus the indexes requests need (path lookup, per-directory children)."""

    manifest: CommitManifest
    files: dict[str, FileEntry]
    dirs: dict[str, DirEntry]
    _children: dict[str, list[Entry]] | None = field(default=None, repr=False)
    _ordered: list[Entry] | None = field(default=None, repr=False)
    headers: dict[str, list[tuple[bytes, bytes]]] = field(default_factory=dict, repr=False)  # resolve's, per path
    unmirrored: frozenset[str] = frozenset()  # files whose bodies sync patterns left out (mirror_core.mirrored)
    unmirrored_expires: float = 0.0  # a later sync may complete the commit: re-read the record after this

    @classmethod
    def build(cls, manifest: CommitManifest) -> ManifestView:
        files = {f.path: f for f in manifest.files}
        dirs = {d.path: d for d in manifest.directories}
        for path in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                parent = "/".join(parts[:i])
                if parent not in dirs:
                    dirs[parent] = DirEntry(path=parent, oid=_synthetic_tree_oid(parent))
        return cls(manifest, files, dirs)

    @property
    def sha(self) -> str:
        return self.manifest.sha

    @property
    def weight(self) -> int:
        return len(self.files) + len(self.dirs) + 1

    def children(self, directory: str) -> list[Entry]:
        """Direct children of a directory ("" = root): directories first, then files, by path."""
        if self._children is None:
            index: dict[str, list[Entry]] = {}
            entries: list[Entry] = [*sorted(self.dirs.values(), key=lambda d: d.path),
                                    *sorted(self.files.values(), key=lambda f: f.path)]
            for entry in entries:
                index.setdefault(entry.path.rpartition("/")[0], []).append(entry)
            self._children = index
        return self._children.get(directory, [])

    def walk(self, directory: str) -> list[Entry]:
        """Every entry under a directory, recursively, in path order (a folder before its content)."""
        if self._ordered is None:
            self._ordered = sorted([*self.dirs.values(), *self.files.values()], key=lambda e: e.path)
        if not directory:
            return self._ordered
        prefix = directory + "/"
        return [e for e in self._ordered if e.path.startswith(prefix)]


@dataclass
class RefsEntry:
    """One refs.json read, with the revision lookups made against it."""

    refs: Refs | None
    expires: float
    resolved: dict[str, str] = field(default_factory=dict)


class LRU(Generic[K, V]):
    """A dict that forgets its least recently used keys beyond a total weight (1 per entry unless given):
    clients choose the keys (repo ids, shas), so state keyed by them must not grow with the number of URLs
    anyone cares to invent. Items heavier than `max_item` are not kept at all (one must not evict the rest)."""

    def __init__(self, limit: int, max_item: int | None = None) -> None:
        self.limit = limit
        self.max_item = limit if max_item is None else max_item
        self.weight = 0
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V, weight: int = 1) -> None:
        if weight > self.max_item:
            return
        self.pop(key)
        self._items[key] = (value, weight)
        self.weight += weight
        while self.weight > self.limit and len(self._items) > 1:
            _, (_, old) = self._items.popitem(last=False)
            self.weight -= old

    def pop(self, key: K) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.weight -= item[1]

    def __len__(self) -> int:
        return len(self._items)


class RepoState:
    """Cached, read-only view of the bucket for request handlers."""

    def __init__(self, store: Store, *, refs_ttl: float, missing_ttl: float, list_ttl: float,
                 manifest_cache_files: int, page_cache_bytes: int = 64 * 1024**2,
                 repo_cache_entries: int = 20_000) -> None:
        self.store = store
        self.refs_ttl = refs_ttl
        self.missing_ttl = missing_ttl
        self.list_ttl = list_ttl
        self._refs: LRU[RepoRef, RefsEntry] = LRU(repo_cache_entries)
        self._manifests: LRU[tuple[RepoRef, str], ManifestView] = LRU(manifest_cache_files)  # by file entries
        self.pages: LRU[Any, Any] = LRU(page_cache_bytes, max_item=page_cache_bytes // 4)  # by answer bytes
        self._missing_commits: LRU[tuple[RepoRef, str], float] = LRU(repo_cache_entries)
        self._commit_lists: LRU[RepoRef, tuple[float, list[str]]] = LRU(max(100, repo_cache_entries // 20))
        self.fingerprints: LRU[str, int] = LRU(100_000)  # body sha256 -> xxh3 of bytes that matched it
        self._inflight: dict[Any, asyncio.Future] = {}
        self.limiter = anyio.CapacityLimiter(64)
        self.stream_limiter = anyio.CapacityLimiter(512)  # threads for proxied bodies: sha256 checks, TLS reads

    # -- plumbing ----------------------------------------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call in a worker thread, mapping storage failures to a 503."""
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)
        except StorageError as exc:
            # The detail names the endpoint and keys: it goes to the log, not to anonymous clients.
            log.warning("object store call %s failed: %s", getattr(fn, "__name__", fn), exc)
            raise ServiceUnavailable("the mirror's object store is unavailable; retry later") from exc

    async def _once(self, key: Any, load: Callable[[], Awaitable[T]]) -> T:
        """Coalesce concurrent loads of one key."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[key]

    # -- refs --------------------------------------------------------------------------------

    async def refs_entry(self, repo: RepoRef) -> RefsEntry:
        entry = self._refs.get(repo)
        now = time.monotonic()
        if entry is not None and entry.expires > now:
            metrics.REFS_HIT.inc()
            return entry
        metrics.REFS_MISS.inc()
        return await self._once(("refs", repo), lambda: self._load_refs(repo))

    async def _load_refs(self, repo: RepoRef) -> RefsEntry:
        data = await self.run(self.store.get_bytes, refs_key(repo))
        try:
            refs = Refs.from_json(data, refs_key(repo)) if data is not None else None
        except CorruptObjectError as exc:
            # Unreadable is not absent: answering as if the repo (or its access rules) were missing could
            # open it up, so the answer is "unavailable" until `hubmirror verify` or a sync rewrites it.
            log.error("refs.json of %s is malformed (run `hubmirror verify`): %s", repo, exc)
            raise ServiceUnavailable("the mirror cannot read this repository's state; retry later") from exc
        ttl = self.refs_ttl if refs is not None else self.missing_ttl
        old = self._refs.get(repo)
        entry = RefsEntry(refs, time.monotonic() + ttl)
        if old is not None and old.refs == refs:
            entry.resolved = old.resolved  # nothing moved: keep lookups
        elif refs is not None:
            for sha in refs.all_shas():  # a commit published since it was looked for is no longer missing
                self._missing_commits.pop((repo, sha))
        self._refs.put(repo, entry)
        return entry

    async def refs(self, repo: RepoRef) -> Refs | None:
        return (await self.refs_entry(repo)).refs

    # -- manifests ---------------------------------------------------------------------------

    async def manifest(self, repo: RepoRef, sha: str) -> ManifestView | None:
        view = self._manifests.get((repo, sha))
        if view is not None:
            metrics.MANIFEST_HIT.inc()
            return view
        missing = self._missing_commits.get((repo, sha))
        if missing is not None and missing > time.monotonic():
            return None
        metrics.MANIFEST_MISS.inc()
        return await self._once(("manifest", repo, sha), lambda: self._load_manifest(repo, sha))

    async def _load_manifest(self, repo: RepoRef, sha: str) -> ManifestView | None:
        data = await self.run(self.store.get_bytes, commit_key(repo, sha))
        if data is None:
            self._missing_commits.put((repo, sha), time.monotonic() + self.missing_ttl)
            return None
        try:
            view = await anyio.to_thread.run_sync(lambda: ManifestView.build(CommitManifest.from_json(data)))
        except CorruptObjectError as exc:
            log.error("manifest %s of %s is malformed (run `hubmirror verify`): %s", sha, repo, exc)
            raise ServiceUnavailable("the mirror cannot read this commit; retry later") from exc
        view.unmirrored = await self.run(read_unmirrored, self.store, repo, sha)
        view.unmirrored_expires = time.monotonic() + self.refs_ttl
        self._manifests.put((repo, sha), view, view.weight)
        return view

    async def unmirrored(self, repo: RepoRef, view: ManifestView) -> frozenset[str]:
        """The commit's files without a body in the bucket, re-read behind the refs TTL while there are any."""
        if view.unmirrored and view.unmirrored_expires < time.monotonic():
            view.unmirrored = await self._once(("unmirrored", repo, view.sha),
                                               lambda: self.run(read_unmirrored, self.store, repo, view.sha))
            view.unmirrored_expires = time.monotonic() + self.refs_ttl
        return view.unmirrored

    # -- revisions ---------------------------------------------------------------------------

    async def resolve(self, repo: RepoRef, entry: RefsEntry, revision: str) -> str:
        """The commit sha a revision names in the bucket, or RevisionNotFound."""
        sha = entry.resolved.get(revision)
        if sha is not None:
            return sha
        assert entry.refs is not None
        try:
            sha = entry.refs.resolve(revision)
        except InvalidInputError as exc:
            raise RevisionNotFound(revision) from exc
        if sha is None and 7 <= len(revision) < 40 and all(c in "0123456789abcdef" for c in revision):
            sha = resolve_short_sha(revision, await self.commit_shas(repo))
        if sha is None:
            raise RevisionNotFound(revision)
        if is_commit_sha(revision) and sha not in entry.refs.all_shas():
            if await self.manifest(repo, sha) is None:
                raise RevisionNotFound(revision)
        if len(entry.resolved) < 1024:
            entry.resolved[revision] = sha
        return sha

    async def commit_shas(self, repo: RepoRef) -> list[str]:
        """Every published commit of a repo (for short-sha lookups), behind the refs TTL."""
        cached = self._commit_lists.get(repo)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]

        def load() -> list[str]:
            out = []
            for obj in self.store.list(commits_prefix(repo)):
                try:
                    out.append(sha_from_commit_key(obj.key))
                except InvalidInputError:
                    continue
            return out

        shas = await self.run(load)
        self._commit_lists.put(repo, (time.monotonic() + self.refs_ttl, shas))
        return shas


def default_sha(refs: Refs) -> str | None:
    """The commit a bare repo URL means (`Refs.default_revision`)."""
    chosen = refs.default_revision()
    return chosen[1] if chosen else None


_parsed: dict[tuple[str, str], RepoRef | None] = {}


def repo_ref(repo_id: str, repo_type: str) -> RepoRef | None:
    """A validated RepoRef, or None for an id the Hub would not accept (memoised: ids repeat a lot)."""
    key = (repo_id, repo_type)
    if key in _parsed:
        return _parsed[key]
    try:
        ref: RepoRef | None = RepoRef.parse(repo_id, repo_type)
    except InvalidInputError:
        ref = None
    if len(_parsed) > 50_000:
        _parsed.clear()
    _parsed[key] = ref
    return ref
