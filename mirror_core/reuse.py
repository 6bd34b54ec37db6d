"""Which stored bodies a sync may take without downloading them (issue 10: dedup is not a key).

An upstream tree entry's LFS sha256 is only a claim: any repo can list the sha256 and size of a body
it does not have (a gated model's weights, say). If the mirror took "a blob with that name is
stored" as proof, a public repo listing a gated repo's sha256 would publish the gated bytes to
everyone. So a stored body is reused without a download only when
  * a published manifest of the same repo names it (same repo, same access), or
  * a manifest published by a public repo (refs.json says not private and not gated; unknown
    counts as not public) names it: those bytes are readable by anyone already.
Every other body is downloaded from this repo's upstream and hashed (invariant 1); the upload is
still skipped when the verified body is already stored, so storage stays deduplicated.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from mirror_core.errors import CorruptObjectError
from mirror_core.inventory import list_repos, read_manifest, read_many
from mirror_core.layout import RepoRef, blob_key, commit_key
from mirror_core.manifest import CommitManifest, Refs
from mirror_core.store import Store

CACHE_ENTRIES = 20_000  # refs.json and manifests by ETag (each entry a set of sha256 strings)
_CACHE: OrderedDict[tuple[str, str, str, str], frozenset[str]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def public_bodies(store: Store, skip: RepoRef | None = None) -> set[str]:
    """sha256 of every body named by the published manifests of public repos.

    One listing of `repos/`, then the refs.json of every repo and the manifests their refs point at, read
    in parallel; both are cached by ETag for the life of the process (a CLI run syncing many repos reads
    each object once). Unreadable objects count as not public.
    """
    listing = list_repos(store)
    by_key = {objects.refs.key: repo for repo, objects in listing.repos.items()
              if objects.refs is not None and repo != skip}
    etags = {key: refs.etag for key, repo in by_key.items() if (refs := listing.repos[repo].refs) is not None}
    shas, _ = read_many(by_key, lambda key: _public_shas(store, key, etags[key]))
    manifests = {commit_key(by_key[key], sha): listing.repos[by_key[key]].manifests[sha].etag
                 for key, found in shas.items() for sha in found if sha in listing.repos[by_key[key]].manifests}
    bodies, _ = read_many(sorted(manifests), lambda key: _manifest_bodies(store, key, manifests[key]))
    return set().union(*bodies.values())


def _cache_get(store: Store, key: str, etag: str) -> frozenset[str] | None:
    if not etag:
        return None
    ident = (store.settings.endpoint, store.bucket, key, etag)
    with _CACHE_LOCK:
        if ident in _CACHE:
            _CACHE.move_to_end(ident)
        return _CACHE.get(ident)


def _cache_put(store: Store, key: str, etag: str, value: frozenset[str]) -> frozenset[str]:
    if not etag:
        return value  # nothing to tell versions apart by: read it again next time
    with _CACHE_LOCK:
        _CACHE[(store.settings.endpoint, store.bucket, key, etag)] = value
        while len(_CACHE) > CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    return value


def _public_shas(store: Store, key: str, listed_etag: str) -> frozenset[str]:
    """The commit shas a repo's refs.json publishes if the repo is public, else none.

    Cached under the ETag its GET returned, looked up with the ETag the listing gave: an entry always
    describes the bytes that carried that ETag, even if the object changed between listing and GET.
    """
    cached = _cache_get(store, key, listed_etag)
    if cached is not None:
        return cached
    got = store.get_with_etag(key)
    if got is None:
        return frozenset()
    try:
        refs = Refs.from_json(got[0], key)
    except CorruptObjectError:
        return frozenset()
    return _cache_put(store, key, got[1].strip('"'), frozenset(refs.all_shas()) if is_public(refs) else frozenset())


def _manifest_bodies(store: Store, key: str, etag: str) -> frozenset[str]:
    """Bodies a manifest names (manifests are immutable; the ETag only guards against a rewrite)."""
    cached = _cache_get(store, key, etag)
    if cached is not None:
        return cached
    return _cache_put(store, key, etag, frozenset(e.sha256 for e in read_manifest(store, key).files))


def is_public(refs: Refs) -> bool:
    """Readable by anyone: recorded as neither private nor gated (None, i.e. unknown, is not public)."""
    return refs.restricted is False


class ReusePolicy:
    """The bodies one sync of one repo may reuse; the public index is built at most once, when first needed."""

    def __init__(self, store: Store, repo: RepoRef) -> None:
        self.store = store
        self.repo = repo
        self.own: set[str] = set()
        self._public: set[str] | None = None
        self._lock = threading.Lock()

    def learn(self, manifest: CommitManifest) -> None:
        """Bodies named by a manifest of this repo (published, or just written by this sync)."""
        with self._lock:
            self.own.update(entry.sha256 for entry in manifest.files)

    def may_reuse(self, sha256: str) -> bool:
        """Whether a stored body named `sha256` may stand for an upstream file of this repo without a download."""
        if sha256 in self.own:
            return True
        if self.store.stat(blob_key(sha256)) is None:
            return False  # nothing stored to reuse: the body is downloaded anyway, no need to ask who names it
        with self._lock:
            if self._public is None:
                self._public = public_bodies(self.store, skip=self.repo)
            return sha256 in self._public
