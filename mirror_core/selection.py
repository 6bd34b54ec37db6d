"""What to mirror: the configured repos plus the latest trending snapshot, one plan per repo.

Plans are plain data (`to_dict`/`from_dict`) because Airflow hands them from the planning task to
one mapped sync task per repo through XCom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mirror_core.errors import InvalidInputError
from mirror_core.layout import TRENDING_LATEST, RepoRef, repo_type
from mirror_core.settings import RepoSelection, Settings
from mirror_core.store import Store


@dataclass
class RepoPlan:
    """One repo to sync and how: revisions (names, shas or globs) and file patterns."""

    repo_id: str
    repo_type: str = "models"
    revisions: list[str] = field(default_factory=lambda: ["main"])
    allow_patterns: list[str] | None = None
    ignore_patterns: list[str] | None = None
    source: str = "config"  # config | trending | request

    def __post_init__(self) -> None:
        self.repo_type = repo_type(self.repo_type)
        RepoRef.parse(self.repo_id, self.repo_type)

    @property
    def repo(self) -> RepoRef:
        return RepoRef.parse(self.repo_id, self.repo_type)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RepoPlan:
        known = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if "repo_id" not in known:
            raise InvalidInputError(f"a repo plan needs `repo_id`; got keys {sorted(data)}")
        return cls(**known)

    @classmethod
    def from_selection(cls, selection: RepoSelection) -> RepoPlan:
        return cls(selection.id, selection.type, list(selection.revisions), selection.allow_patterns,
                   selection.ignore_patterns, "config")


def latest_trending(store: Store) -> list[RepoPlan]:
    """The repos the latest stored trending snapshot selected (none if no snapshot yet)."""
    data = store.get_json(TRENDING_LATEST)
    if not data:
        return []
    return [RepoPlan.from_dict(item) for item in data.get("repos", [])]


def plan(settings: Settings, store: Store) -> list[RepoPlan]:
    """Configured repos first (their revisions and patterns win), then trending ones, deduplicated."""
    plans: dict[RepoRef, RepoPlan] = {}
    for selection in settings.selection.repos:
        item = RepoPlan.from_selection(selection)
        plans.setdefault(item.repo, item)
    for item in latest_trending(store):
        plans.setdefault(item.repo, item)
    return list(plans.values())
