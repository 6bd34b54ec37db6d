"""Garbage collection of bodies: mark-and-sweep with a grace period (ARCHITECTURE invariant 8).

Mark: every body any manifest in the bucket names (retention has already removed the manifests it
does not keep). Sweep: every other body whose S3 last-modified time is older than the grace period.
The grace period protects an in-flight sync, which uploads bodies before it publishes the manifest
naming them. Multipart uploads left unfinished by a sync that was killed (their parts take space
but no object names them) are aborted once they are older than the grace period too. The blob
listing is taken *before* the mark, and manifests that appear while we mark are marked again just
before deleting, so a publish racing the sweep keeps what it names. If any manifest cannot be
read, nothing is deleted: an unreadable manifest may name any body.
"""

from __future__ import annotations

import time
from collections.abc import Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mirror_core.errors import StorageError
from mirror_core.inventory import list_blobs, list_repos, read_manifest, read_many
from mirror_core.layout import BLOBS_PREFIX, blob_key
from mirror_core.reports import RunReport, new_run_id, safe_run_id
from mirror_core.retention import RetentionReport, apply_retention, inside_grace
from mirror_core.settings import Settings
from mirror_core.store import Store

DELETE_WORKERS = 8
LISTED_DELETIONS = 1000  # the report names at most this many deleted bodies (counts are always complete)


@dataclass
class GcReport:
    dry_run: bool
    grace_seconds: int
    run_id: str = ""
    manifests: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    referenced: int = 0
    referenced_bytes: int = 0
    missing: int = 0  # named by a manifest but absent (verify --repair restores them)
    young: int = 0
    young_bytes: int = 0
    deleted: int = 0
    bytes_reclaimed: int = 0
    deleted_blobs: list[dict[str, Any]] = field(default_factory=list)
    uploads_aborted: int = 0  # unfinished multipart uploads older than the grace period (dry run: would be)
    problems: list[str] = field(default_factory=list)  # any problem blocks deletion
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    retention: dict[str, Any] | None = None  # the retention pass that ran first, if any
    report_key: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and (self.retention is None or bool(self.retention.get("ok")))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _mark(store: Store, skip: Set[str], report: GcReport) -> tuple[set[str], set[str]]:
    """Bodies named by the manifests listed now, except the `skip` keys; returns (sha256s, keys read)."""
    keys = [k for k in list_repos(store).manifest_keys() if k not in skip]
    manifests, errors = read_many(keys, lambda key: read_manifest(store, key))
    report.problems.extend(errors.values())
    named = {f.sha256 for m in manifests.values() for f in m.files}
    return named, set(keys)


def collect_garbage(settings: Settings, store: Store, *, dry_run: bool = False,
                    grace_seconds: int | None = None, assume_removed: frozenset[str] = frozenset(),
                    now: datetime | None = None, run_id: str | None = None,
                    retention: RetentionReport | None = None, write_report: bool = True) -> GcReport:
    """Delete (or with dry_run, list) unreferenced bodies older than the grace period.

    `assume_removed`: manifest keys to treat as already gone, so a dry run can show what gc would
    reclaim after a retention dry run. A run report is written unless this is a dry run.
    """
    started = time.monotonic()
    grace = settings.retention.gc_grace_seconds if grace_seconds is None else grace_seconds
    if grace < 0:
        raise ValueError(f"grace_seconds must be 0 or more, got {grace}")
    report = GcReport(dry_run=dry_run, grace_seconds=grace,
                      run_id=safe_run_id(run_id) if run_id else new_run_id("gc"),
                      retention=retention.to_dict() if retention is not None else None)
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=grace)
    _sweep(store, report, assume_removed, cutoff)
    _abort_stale_uploads(store, report, cutoff)
    report.seconds = round(time.monotonic() - started, 3)
    if write_report and not dry_run:
        report.report_key = RunReport("gc", report.run_id, report.ok, details=report.to_dict()).write(store)
    return report


def retain_and_collect(settings: Settings, store: Store, *, dry_run: bool = False,
                       grace_seconds: int | None = None, run_id: str | None = None,
                       now: datetime | None = None) -> GcReport:
    """The whole gc cycle (CLI `hubmirror gc`, the gc DAG): retention first, then mark-and-sweep."""
    kept = apply_retention(settings, store, dry_run=dry_run, now=now)
    assumed = frozenset(kept.removed) if dry_run else frozenset()
    return collect_garbage(settings, store, dry_run=dry_run, grace_seconds=grace_seconds, assume_removed=assumed,
                           now=now, run_id=run_id, retention=kept)


def _sweep(store: Store, report: GcReport, assume_removed: frozenset[str], cutoff: datetime) -> None:
    blobs, unexpected = list_blobs(store)  # listed before marking: see the module docstring
    report.warnings.extend(f"{key} is not a well-formed blob key; left alone" for key in unexpected)
    named, read = _mark(store, assume_removed, report)
    report.manifests = len(read)
    report.blobs = len(blobs)
    report.blob_bytes = sum(b.size for b in blobs.values())
    report.missing = len(named - blobs.keys())

    candidates: dict[str, int] = {}
    for sha256, info in blobs.items():
        if sha256 in named:
            report.referenced += 1
            report.referenced_bytes += info.size
        elif inside_grace(info.last_modified, cutoff):
            report.young += 1
            report.young_bytes += info.size
        else:
            candidates[sha256] = info.size

    if candidates:
        late, late_keys = _mark(store, assume_removed | read, report)
        report.manifests += len(late_keys)
        for sha256 in late & candidates.keys():
            report.referenced += 1
            report.referenced_bytes += candidates.pop(sha256)

    if report.problems and not report.dry_run:
        report.problems.append("nothing was deleted because of the problems above")
        return
    if not report.dry_run and candidates:
        with ThreadPoolExecutor(max_workers=DELETE_WORKERS) as pool:
            failed = [f for f in pool.map(lambda sha: _delete(store, sha), list(candidates)) if f]
        for sha256, message in failed:
            report.problems.append(f"body {sha256} not deleted: {message}")
            candidates.pop(sha256)
    report.deleted = len(candidates)
    report.bytes_reclaimed = sum(candidates.values())
    report.deleted_blobs = [{"sha256": sha, "size": size}
                            for sha, size in sorted(candidates.items())[:LISTED_DELETIONS]]


def _abort_stale_uploads(store: Store, report: GcReport, cutoff: datetime) -> None:
    for key, upload_id, initiated in store.list_uploads(BLOBS_PREFIX):
        if inside_grace(initiated, cutoff):
            continue
        if not report.dry_run:
            try:
                store.abort_upload(key, upload_id)
            except StorageError as exc:
                report.warnings.append(f"unfinished upload of {key} not aborted: {exc}")
                continue
        report.uploads_aborted += 1


def _delete(store: Store, sha256: str) -> tuple[str, str] | None:
    try:
        store.delete(blob_key(sha256))
    except StorageError as exc:
        return sha256, str(exc)
    return None
