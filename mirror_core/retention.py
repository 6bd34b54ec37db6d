"""Retention: which commit manifests stay in the bucket.

Kept per repo: every commit a ref points at (branches, tags, converts, pull requests: refs are
never touched, so nothing published can dangle), plus the last `keep_last` commits of each branch
that have a manifest, walking the commit log the branch head's manifest carries. Everything else
under `commits/` goes, except manifests younger than the grace period: a sync writes its manifest
before it flips refs.json (ARCHITECTURE invariant 2), so a fresh, not-yet-referenced manifest is
an in-flight publish, not garbage. Removing manifests only releases bodies; `gc` deletes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mirror_core.errors import CorruptObjectError
from mirror_core.inventory import RepoListing, RepoObjects, list_repos, read_manifest, read_refs
from mirror_core.layout import is_commit_sha, refs_key
from mirror_core.manifest import CommitManifest, Refs
from mirror_core.settings import Settings
from mirror_core.store import Store


@dataclass
class RetentionReport:
    dry_run: bool
    keep_last: int
    grace_seconds: int
    repos: int = 0
    manifests: int = 0
    kept: int = 0
    removed: list[str] = field(default_factory=list)  # manifest keys (to be) deleted
    young: list[str] = field(default_factory=list)  # unreferenced but inside the grace period
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def commit_history(manifest: CommitManifest) -> list[str]:
    """The commit shas of a manifest's log, newest first, starting with the manifest's own commit.

    The log is the upstream's `/commits` answer (newest first, `id`), which sync stores as given;
    `commit_id` is accepted too because huggingface_hub's GitCommitInfo names it that way.
    """
    history = [manifest.sha]
    for entry in manifest.commits:
        sha = entry.get("id") or entry.get("commit_id")
        if isinstance(sha, str) and is_commit_sha(sha) and sha not in history:
            history.append(sha)
    return history


def retained_shas(refs: Refs, manifests: dict[str, CommitManifest], available: set[str],
                  keep_last: int) -> tuple[set[str], list[str]]:
    """Which commits of one repo to keep, and problems found (a branch whose head has no manifest)."""
    keep = set(refs.all_shas())
    problems: list[str] = []
    for branch, head in sorted(refs.branches.items()):
        manifest = manifests.get(head)
        if manifest is None:
            problems.append(f"branch {branch!r} points at {head} but its manifest is missing or unreadable")
            continue
        kept = 0
        for sha in commit_history(manifest):
            if kept >= keep_last:
                break
            if sha in available:
                keep.add(sha)
                kept += 1
    return keep, problems


def apply_retention(settings: Settings, store: Store, *, dry_run: bool = False,
                    now: datetime | None = None) -> RetentionReport:
    """Remove manifests that retention no longer keeps (or only report them with dry_run)."""
    policy = settings.retention
    report = RetentionReport(dry_run=dry_run, keep_last=policy.keep_last, grace_seconds=policy.gc_grace_seconds)
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=policy.gc_grace_seconds)
    listing: RepoListing = list_repos(store)
    report.repos = len(listing.repos)
    report.manifests = listing.manifest_count
    for objects in listing.repos.values():
        for key in _repo_removals(store, objects, policy.keep_last, cutoff, report):
            if not dry_run:
                store.delete(key)
            report.removed.append(key)
    report.kept = report.manifests - len(report.removed)
    return report


def _repo_removals(store: Store, objects: RepoObjects, keep_last: int, cutoff: datetime,
                   report: RetentionReport) -> list[str]:
    if objects.refs is None:
        keep: set[str] = set()  # nothing published: only in-flight (young) manifests survive
    else:
        try:
            refs = read_refs(store, objects.repo)
        except CorruptObjectError as exc:
            report.problems.append(f"{objects.repo}: {exc}; kept all its manifests")
            return []
        heads = {sha for sha in refs.branches.values() if sha in objects.manifests}
        manifests: dict[str, CommitManifest] = {}
        for sha in heads:
            try:
                manifests[sha] = read_manifest(store, objects.manifest_key(sha))
            except CorruptObjectError as exc:
                report.problems.append(f"{objects.repo}: {exc}")
        keep, problems = retained_shas(refs, manifests, set(objects.manifests), keep_last)
        report.problems.extend(f"{objects.repo}: {p}" for p in problems)
        if problems:
            return []  # a broken branch head hides its history: keep everything until verify/sync fix it
    removals = []
    for sha, info in sorted(objects.manifests.items()):
        if sha in keep:
            continue
        if inside_grace(info.last_modified, cutoff):
            report.young.append(objects.manifest_key(sha))
            continue
        removals.append(sha)
    if removals and store.exists(refs_key(objects.repo)):
        # A sync may have (first) published since we listed: never delete what refs.json now points at.
        try:
            latest = read_refs(store, objects.repo)
        except CorruptObjectError as exc:
            report.problems.append(f"{objects.repo}: {exc}; kept all its manifests")
            return []
        removals = [sha for sha in removals if sha not in latest.all_shas()]
    return [objects.manifest_key(sha) for sha in removals]


def inside_grace(when: datetime | None, cutoff: datetime) -> bool:
    """Written after `cutoff` (so kept); unknown age counts as young: deleting is the irreversible choice."""
    return when is None or when > cutoff
