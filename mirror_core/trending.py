"""Trending refresh: ask the upstream what is trending, keep what passes the filters, store a snapshot.

The snapshot records every candidate considered and why it was rejected, so an operator can see
why a repo is (not) mirrored. It is stored at `state/trending/<timestamp>.json` and copied to
`latest.json`, which `selection.plan` reads. Each refresh also rewrites the popularity snapshot
(mirror_core.popularity) of every listed repo that is mirrored or selected, from the same listing call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mirror_core.access import restrict_from_listing
from mirror_core.errors import HubmirrorError, UpstreamAuthError
from mirror_core.layout import TRENDING_LATEST, RepoRef, RepoType, trending_snapshot_key
from mirror_core.manifest import hf_date
from mirror_core.popularity import refresh_from_listing
from mirror_core.selection import RepoPlan
from mirror_core.settings import Settings, TrendingFilter
from mirror_core.store import Store
from mirror_core.upstream import Upstream


@dataclass
class TrendingSnapshot:
    created_at: datetime
    upstream: str
    considered: list[dict[str, Any]] = field(default_factory=list)  # id, type, rank, selected, reason
    repos: list[RepoPlan] = field(default_factory=list)
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"created_at": hf_date(self.created_at), "upstream": self.upstream, "key": self.key,
                "considered": self.considered, "repos": [r.to_dict() for r in self.repos]}


def rejection(item: dict[str, Any], rules: TrendingFilter) -> str | None:
    """Why a trending item fails the metadata filters (tags, library, pipeline), or None."""
    tags = set(item.get("tags") or [])
    missing = [t for t in rules.tags if t not in tags]
    if missing:
        return f"lacks tags {missing}"
    excluded = sorted(tags.intersection(rules.exclude_tags))
    if excluded:
        return f"has excluded tags {excluded}"
    if rules.libraries and item.get("library_name") not in rules.libraries:
        return f"library {item.get('library_name')!r} not in {rules.libraries}"
    if rules.pipeline_tags and item.get("pipeline_tag") not in rules.pipeline_tags:
        return f"pipeline {item.get('pipeline_tag')!r} not in {rules.pipeline_tags}"
    return None


def repo_size(info: dict[str, Any]) -> int:
    """Total bytes of a repo from repo info with files metadata (`blobs=true`)."""
    return sum(int(s.get("size") or 0) for s in info.get("siblings") or [])


def evaluate(upstream: Upstream, type: RepoType, item: dict[str, Any], rules: TrendingFilter) -> dict[str, Any]:
    """One candidate's verdict; only candidates passing the cheap filters cost further upstream calls."""
    repo = RepoRef.parse(item["id"], type)
    verdict: dict[str, Any] = {"id": item["id"], "type": type, "gated": item.get("gated") or False,
                               "private": item.get("private", False), "selected": False, "reason": None}
    reason = rejection(item, rules)
    restricted = bool(item.get("gated")) or bool(item.get("private"))
    if reason is None and item.get("gated") and not rules.include_gated:
        reason = "gated (set include_gated to mirror gated repos the token can read)"
    try:
        if reason is None and restricted and not upstream.can_read(repo):
            reason = "gated or private and the service token cannot read it"
        if reason is None and rules.max_total_size is not None:
            size = repo_size(upstream.repo_info(repo, files_metadata=True))
            verdict["size"] = size
            if size > rules.max_total_size:
                reason = f"{size} bytes exceeds max_total_size {rules.max_total_size}"
    except UpstreamAuthError:
        raise
    except HubmirrorError as exc:
        reason = f"upstream error: {exc}"
    verdict["reason"] = reason
    verdict["selected"] = reason is None
    return verdict


def refresh_trending(settings: Settings, store: Store, *, upstream: Upstream | None = None) -> TrendingSnapshot:
    """Fetch the trending lists, filter them, store the snapshot (timestamped + latest) and return it.

    Per type, the first `top` repos of the upstream's trending list are considered (in trending
    order) and each is kept or rejected with a reason; `top: 0` leaves the type out.
    """
    upstream = upstream or Upstream(settings)
    snapshot = TrendingSnapshot(created_at=datetime.now(UTC), upstream=settings.upstream_url)
    store.ensure_bucket()
    kinds: tuple[tuple[RepoType, TrendingFilter], ...] = (("models", settings.selection.trending.models),
                                                         ("datasets", settings.selection.trending.datasets))
    for type, rules in kinds:
        if rules.top <= 0:
            continue
        items = upstream.trending(type, rules.top)
        for rank, item in enumerate(items, start=1):
            verdict = evaluate(upstream, type, item, rules)
            verdict.update(rank=rank, trending_score=item.get("trending_score"), downloads=item.get("downloads"),
                           likes=item.get("likes"))
            snapshot.considered.append(verdict)
            if verdict["selected"]:
                snapshot.repos.append(RepoPlan(item["id"], type, source="trending"))
            elif restrict_from_listing(store, RepoRef.parse(item["id"], type), verdict["private"], verdict["gated"]):
                verdict["restricted_in_mirror"] = True  # it turned gated/private upstream: not left public here
        selected = {v["id"] for v in snapshot.considered if v["selected"] and v["type"] == type}
        refresh_from_listing(store, type, [i["info"] for i in items], settings.upstream_url, selected)
    snapshot.key = trending_snapshot_key(snapshot.created_at)
    body = snapshot.to_dict()
    store.put_json(snapshot.key, body)
    store.put_json(TRENDING_LATEST, body)
    return snapshot
