"""The local copy of the search catalog, refreshed by ETag so listing never reads the bucket per repo.

`state/catalog/latest.json` is re-read at most every `ttl` seconds; only when it names a new snapshot is
that SQLite file downloaded (once, coalesced) and swapped in. Queries run on the event loop: they take
about a millisecond on 10,000 repos, less than a thread hop, and the connection is never shared across
threads.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

from mirror_core.catalog import Catalog, fetch_latest
from mirror_core.layout import CATALOG_LATEST
from serve.repo_state import RepoState

log = logging.getLogger("hubmirror.serve.catalog")


class CatalogCache:
    """The newest published catalog, or None while none is built (or it is of another format)."""

    def __init__(self, state: RepoState, ttl: float) -> None:
        self.state = state
        self.ttl = ttl
        self.dir = Path(tempfile.mkdtemp(prefix="hubmirror-serve-catalog-"))
        self._catalog: Catalog | None = None
        self._key: str | None = None
        self._etag: str | None = None
        self._checked = float("-inf")

    async def get(self) -> Catalog | None:
        if time.monotonic() - self._checked < self.ttl:
            return self._catalog
        return await self.state._once("catalog", self._refresh)

    async def _refresh(self) -> Catalog | None:
        got = await self.state.run(self.state.store.get_with_etag, CATALOG_LATEST)
        self._checked = time.monotonic()
        if got is None or got[1] == self._etag:
            return self._catalog
        try:
            key = json.loads(got[0])["key"]
        except (ValueError, KeyError, TypeError):
            log.warning("%s is malformed; keeping the catalog in use", CATALOG_LATEST)
            return self._catalog
        if key != self._key:
            fetched = await self.state.run(fetch_latest, self.state.store, self.dir, self._key)
            if fetched is None:
                return self._catalog
            try:
                catalog = Catalog(fetched[1])
            except (ValueError, OSError) as exc:
                log.warning("catalog %s not used: %s", fetched[0], exc)
                return self._catalog
            old, self._catalog, self._key = self._catalog, catalog, fetched[0]
            if old is not None:
                old.close()
                if old.path != catalog.path:
                    old.path.unlink(missing_ok=True)
        self._etag = got[1]
        return self._catalog

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
        shutil.rmtree(self.dir, ignore_errors=True)
