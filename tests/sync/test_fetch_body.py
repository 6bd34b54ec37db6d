"""fetch_body, the one way bodies enter the bucket (repair uses it with manifest entries)."""

from __future__ import annotations

import hashlib

from hubmirror.demohub.corpus import LARGE_MODEL
from mirror_core.layout import RepoRef, blob_key
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from mirror_core.transfer import fetch_body
from mirror_core.upstream import Upstream
from tests.sync.helpers import manifest, published_refs


def test_fetch_body_repairs_corrupt_blobs_from_manifest_entries(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = RepoRef.parse(LARGE_MODEL)
    assert sync_repo(settings, repo).ok
    sha = published_refs(store, repo).branches["main"]
    upstream = Upstream(settings)
    for entry in manifest(store, repo, sha).files:  # one LFS (multipart) body, regular ones
        key = blob_key(entry.sha256)
        good = store.get_bytes(key)
        store.put_bytes(key, bytes(b ^ 0x55 for b in good[:64]) + good[64:])  # same size, wrong bytes
        assert fetch_body(settings, store, upstream, repo, sha, entry) == 0  # present: not fetched again
        assert fetch_body(settings, store, upstream, repo, sha, entry, overwrite=True) == entry.size
        assert hashlib.sha256(store.get_bytes(key)).hexdigest() == entry.sha256
        store.delete(key)  # missing: fetched without asking
        assert fetch_body(settings, store, upstream, repo, sha, entry) == entry.size
        assert store.get_bytes(key) == good
