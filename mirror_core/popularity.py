"""The per-repo popularity snapshot: the upstream's counters and card metadata that change without a commit.

Downloads, likes and the trending score move every day while a commit manifest is immutable, so they are
kept in `repos/<type>/<ns>/<name>/meta.json`, rewritten by every sync and every trending refresh and never
by touching a manifest. The catalog joins it to the manifests; serve answers `expand=downloads`, sorts and
filters from there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mirror_core.errors import HubmirrorError
from mirror_core.layout import RepoRef, RepoType, refs_key, repo_meta_key
from mirror_core.manifest import utcnow
from mirror_core.store import Store

if TYPE_CHECKING:
    from mirror_core.upstream import Upstream

log = logging.getLogger("hubmirror.popularity")

# The upstream's repo-info keys kept in the snapshot (HF spelling). `private` rides along: the catalog needs it to
# hide restricted repos when refs.json was written by a version that did not record access.
FIELDS = ("downloads", "likes", "trendingScore", "createdAt", "lastModified", "tags", "pipeline_tag",
          "library_name", "gated", "private", "cardData")
# What `expand=` may ask a listing for, per type: the Hub answers 400 for keys a type does not have.
LIST_EXPAND = {
    "models": FIELDS,
    "datasets": tuple(f for f in FIELDS if f not in ("pipeline_tag", "library_name")),
    "spaces": tuple(f for f in FIELDS if f not in ("pipeline_tag", "library_name", "downloads")),
}


class RepoMeta(BaseModel):
    """meta.json: one repo's popularity fields as the upstream last reported them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = 1
    repo_type: RepoType
    repo_id: str
    upstream: str
    source: Literal["sync", "trending"]
    fetched_at: datetime = Field(default_factory=utcnow)
    fields: dict[str, Any] = Field(default_factory=dict)

    @property
    def restricted(self) -> bool | None:
        """True if gated or private upstream; None if the snapshot did not carry both."""
        if "private" not in self.fields or "gated" not in self.fields:
            return None
        return bool(self.fields["private"]) or self.fields["gated"] not in (False, None, "", "false")

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def pick(info: dict[str, Any]) -> dict[str, Any]:
    """The snapshot fields present in an upstream repo-info or listing item."""
    return {k: info[k] for k in FIELDS if k in info}


def write_meta(store: Store, repo: RepoRef, info: dict[str, Any], *, source: Literal["sync", "trending"],
               upstream: str) -> RepoMeta:
    meta = RepoMeta(repo_type=repo.type, repo_id=repo.repo_id, upstream=upstream, source=source, fields=pick(info))
    store.put_bytes(repo_meta_key(repo), meta.to_json(), "application/json")
    return meta


def read_meta(store: Store, repo: RepoRef) -> RepoMeta | None:
    """The stored snapshot, or None if there is none or it cannot be parsed (it is advisory, never fatal)."""
    data = store.get_bytes(repo_meta_key(repo))
    if data is None:
        return None
    try:
        return RepoMeta.model_validate_json(data)
    except ValidationError as exc:
        log.warning("%s is malformed, ignored until the next sync rewrites it: %s", repo_meta_key(repo), exc)
        return None


def refresh_after_sync(store: Store, upstream: Upstream, repo: RepoRef, info: dict[str, Any]) -> str | None:
    """Store the snapshot from the repo info the sync read anyway (no call of its own).

    Returns a warning instead of raising: a sync that published its commits is not failed by a counter refresh.
    """
    try:
        write_meta(store, repo, info, source="sync", upstream=upstream.endpoint)
    except (HubmirrorError, OSError) as exc:
        return f"{repo}: popularity snapshot not refreshed: {exc}"
    return None


def refresh_from_listing(store: Store, type: RepoType, items: Iterable[dict[str, Any]], upstream: str,
                         wanted: set[str]) -> int:
    """Store the snapshot of every listed repo that is mirrored already or in `wanted` (ids); returns how many.

    Listing items (trending) carry the same fields as repo info when asked with `expand`, so one listing call
    refreshes the counters of every trending repo at once.
    """
    written = 0
    for item in items:
        repo = RepoRef.parse(item["id"], type)
        if item["id"] in wanted or store.exists(refs_key(repo)):
            write_meta(store, repo, item, source="trending", upstream=upstream)
            written += 1
    return written
