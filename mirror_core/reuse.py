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

from mirror_core.inventory import list_repos, read_manifest, read_many, read_refs
from mirror_core.layout import RepoRef, blob_key, commit_key
from mirror_core.manifest import CommitManifest, Refs
from mirror_core.store import Store


def public_bodies(store: Store, skip: RepoRef | None = None) -> set[str]:
    """sha256 of every body named by the published manifests of public repos.

    One listing of `repos/`, then the refs.json of every repo and the manifests their refs point at,
    read in parallel. Unreadable objects count as not public.
    """
    listing = list_repos(store)
    by_key = {objects.refs.key: repo for repo, objects in listing.repos.items()
              if objects.refs is not None and repo != skip}
    refs, _ = read_many(by_key, lambda key: read_refs(store, by_key[key]))
    keys = [commit_key(by_key[key], sha) for key, found in refs.items() if is_public(found)
            for sha in sorted(found.all_shas()) if sha in listing.repos[by_key[key]].manifests]
    manifests, _ = read_many(keys, lambda key: read_manifest(store, key))
    return {entry.sha256 for manifest in manifests.values() for entry in manifest.files}


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
