"""Verify and repair: are the bodies in the bucket still the bytes the manifests promise?

Every run checks, from listings alone, that every manifest's bodies and every ref's manifest exist
and that each body has the size its manifests give. Then it re-hashes bodies: all of them, or a
sample of N per run that continues where the previous sample stopped (a cursor in the bucket), so
that every body is re-hashed over time. A body must hash to its key (sha256) and, where a manifest
names it as a regular file, to its git blob id. With repair, each missing or corrupt body is fetched
again from the upstream through `transfer.fetch_body` (verified exactly like a sync); a body the
upstream no longer has is reported as unrecoverable and its manifests are left as they are. A
corrupt body that no manifest names is deleted, since a later sync would trust its content address.
Bodies no manifest names are reported as orphans; gc reclaims them.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from mirror_core.errors import HubmirrorError, UpstreamNotFoundError
from mirror_core.hashing import BodyHasher
from mirror_core.inventory import list_blobs, list_repos, read_manifest, read_many, read_refs
from mirror_core.layout import VERIFY_CURSOR, RepoRef, blob_key, validate_sha256
from mirror_core.manifest import REF_KINDS, CommitManifest, FileEntry
from mirror_core.mirrored import read_unmirrored
from mirror_core.reports import RunReport, new_run_id, safe_run_id
from mirror_core.settings import Settings
from mirror_core.store import ObjectInfo, Store

CHUNK = 1024 * 1024
HASH_WORKERS = 8
NAMES_KEPT = 5  # per body: enough repair candidates and context for the report, bounded in memory
REMOVED = "removed: corrupt and named by no manifest"
LISTED = 100  # the report lists at most this many items per category (counts are always complete)

Progress = Callable[[int], None]  # bytes hashed since the last call


class VerifyProgress(Protocol):
    """What a caller (the CLI's progress bar) is told: the plan, then bytes as they are hashed."""

    def start(self, bodies: int, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...


@dataclass
class Expectation:
    """What the manifests say about one body."""

    sizes: set[int] = field(default_factory=set)
    oids: set[str] = field(default_factory=set)  # git blob ids of the regular (non-LFS) files it backs
    names: list[tuple[RepoRef, str, FileEntry]] = field(default_factory=list)

    def add(self, manifest: CommitManifest, entry: FileEntry) -> None:
        self.sizes.add(entry.size)
        if entry.lfs is None:
            self.oids.add(entry.oid)
        if len(self.names) < NAMES_KEPT:
            self.names.append((manifest.repo, manifest.sha, entry))

    def named_by(self) -> list[str]:
        return [f"{repo}@{sha}:{entry.path}" for repo, sha, entry in self.names]


@dataclass
class BodyProblem:
    sha256: str
    problem: str  # "missing" or "corrupt"
    detail: str
    named_by: list[str]
    repair: str | None = None  # None (not attempted), "repaired", REMOVED, "unrecoverable: ...", "failed: ..."

    @property
    def resolved(self) -> bool:
        return self.repair in ("repaired", REMOVED)


@dataclass
class VerifyReport:
    run_id: str
    mode: str  # "full", "sample" or "bodies" (only the named bodies are re-hashed)
    sample: int | None
    repair: bool
    started_at: str
    repos: int = 0
    manifests: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    checked: int = 0
    bytes_checked: int = 0
    hash_seconds: float = 0.0
    seconds: float = 0.0
    bodies: list[BodyProblem] = field(default_factory=list)
    orphans: int = 0
    orphan_bytes: int = 0
    orphan_sample: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # manifests/refs that are unreadable or dangling
    errors: list[str] = field(default_factory=list)  # checks that could not run (storage errors)
    cursor: dict[str, Any] | None = None
    report_key: str | None = None

    @property
    def missing(self) -> list[BodyProblem]:
        return [b for b in self.bodies if b.problem == "missing"]

    @property
    def corrupt(self) -> list[BodyProblem]:
        return [b for b in self.bodies if b.problem == "corrupt"]

    @property
    def repaired(self) -> int:
        return sum(b.resolved for b in self.bodies)

    @property
    def unresolved(self) -> list[BodyProblem]:
        return [b for b in self.bodies if not b.resolved]

    @property
    def ok(self) -> bool:
        """True when nothing is left broken: every bad body repaired, every manifest and ref sound."""
        return not self.unresolved and not self.problems and not self.errors

    @property
    def throughput(self) -> float:
        return self.bytes_checked / self.hash_seconds if self.hash_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["bodies"] = data["bodies"][:LISTED]
        return {**data, "ok": self.ok, "missing": len(self.missing), "corrupt": len(self.corrupt),
                "repaired": self.repaired, "unresolved": len(self.unresolved),
                "throughput_bytes_per_second": round(self.throughput)}


# -- hashing ------------------------------------------------------------------------------------

@dataclass
class Digest:
    sha256: str
    git_oid: str | None
    size: int


def hash_body(store: Store, sha256: str, size: int, git: bool, progress: Progress | None = None) -> Digest | None:
    """Stream one body and hash it (sha256, plus git's blob sha1 if asked); None if it is gone."""
    response = store.open(blob_key(sha256))
    if response is None:
        return None
    hasher = BodyHasher(size, git=git)
    try:
        for chunk in response.stream(CHUNK, decode_content=False):
            hasher.update(chunk)
            if progress is not None:
                progress(len(chunk))
    finally:
        response.close()
        response.release_conn()
    return Digest(hasher.sha256, hasher.git_oid if hasher.count == size else None, hasher.count)


def check_body(store: Store, sha256: str, info: ObjectInfo, expected: Expectation | None,
               progress: Progress | None = None) -> tuple[str | None, str]:
    """(problem or None, detail) for one stored body."""
    git = expected is not None and bool(expected.oids)
    got = hash_body(store, sha256, info.size, git, progress)
    if got is None:
        return ("missing", "deleted while being verified") if expected else (None, "")
    if got.sha256 != sha256:
        return "corrupt", f"content hashes to {got.sha256} ({got.size} bytes), not its key"
    if expected is not None:
        if got.size not in expected.sizes:
            return "corrupt", f"{got.size} bytes, manifests say {sorted(expected.sizes)}"
        if git and got.git_oid not in expected.oids:
            return "corrupt", f"git blob id {got.git_oid} matches none of {sorted(expected.oids)}"
    return None, ""


# -- sampling -----------------------------------------------------------------------------------

def pick_sample(universe: list[str], after: str | None, n: int) -> tuple[list[str], bool]:
    """N sorted shas following `after`, wrapping around once; (chosen, wrapped)."""
    if n <= 0 or not universe:
        return [], False
    start = bisect.bisect_right(universe, after) if after else 0
    chosen = universe[start:start + n]
    wrapped = len(chosen) < n and start > 0
    if wrapped:
        chosen += universe[:min(start, n - len(chosen))]
    return chosen, wrapped


# -- the run ------------------------------------------------------------------------------------

def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def verify(settings: Settings, store: Store, *, sample: int | None = None, repair: bool = False,
           run_id: str | None = None, progress: VerifyProgress | None = None, workers: int = HASH_WORKERS,
           write_report: bool = True, bodies: Collection[str] | None = None) -> VerifyReport:
    """Check the bucket (see the module docstring), optionally repair it, and write a run report.

    `bodies` re-hashes only these sha256s (serve flags a body whose proxied read failed its hash);
    the listing checks still cover the whole bucket.
    """
    if sample is not None and sample < 1:
        raise ValueError(f"sample must be a positive number of bodies, got {sample}")
    if bodies is not None:
        if not bodies:
            raise ValueError("bodies: name at least one sha256, or pass None to choose by `sample`")
        bodies = {validate_sha256(b) for b in bodies}
    started = time.monotonic()
    mode = "bodies" if bodies is not None else "full" if sample is None else "sample"
    report = VerifyReport(run_id=safe_run_id(run_id) if run_id else new_run_id("verify"),
                          mode=mode, sample=sample, repair=repair,
                          started_at=_now_iso())
    blobs, unexpected = list_blobs(store)
    report.problems.extend(f"{key} is not a well-formed blob key" for key in unexpected)
    report.blobs, report.blob_bytes = len(blobs), sum(b.size for b in blobs.values())
    expected = _expectations(store, report)

    for sha256 in sorted(expected.keys() - blobs.keys()):
        late = store.stat(blob_key(sha256))  # uploaded after the listing by a sync publishing meanwhile?
        if late is not None:
            blobs[sha256] = late
            continue
        report.bodies.append(BodyProblem(sha256, "missing", "no such object in the bucket",
                                         expected[sha256].named_by()))
    orphans = sorted(blobs.keys() - expected.keys())
    report.orphans, report.orphan_bytes = len(orphans), sum(blobs[s].size for s in orphans)
    report.orphan_sample = orphans[:LISTED]

    if bodies is not None:
        to_hash = sorted(bodies & blobs.keys())
    else:
        to_hash = _choose(store, sorted(blobs), sample, report)
    hashing = set(to_hash)
    for sha256, info in sorted(blobs.items()):  # the listing's sizes catch truncation in every run
        exp = expected.get(sha256)
        if sha256 not in hashing and exp is not None and info.size not in exp.sizes:
            report.bodies.append(BodyProblem(sha256, "corrupt", f"{info.size} bytes in the bucket, manifests say "
                                             f"{sorted(exp.sizes)}", exp.named_by()))
    if progress is not None:
        progress.start(len(to_hash), sum(blobs[s].size for s in to_hash))
    _hash_all(store, to_hash, blobs, expected, report, progress.advance if progress else None, workers)
    if repair and report.bodies:
        _repair(settings, store, report, expected)
    report.seconds = round(time.monotonic() - started, 3)
    if sample is not None and report.cursor is not None and not report.errors:
        store.put_json(VERIFY_CURSOR, {**report.cursor, "updated_at": _now_iso(), "run_id": report.run_id})
    if write_report:
        report.report_key = RunReport("verify", report.run_id, report.ok, details=report.to_dict()).write(store)
    return report


def _expectations(store: Store, report: VerifyReport) -> dict[str, Expectation]:
    listing = list_repos(store)
    report.repos, report.manifests = len(listing.repos), listing.manifest_count
    report.problems.extend(f"{key} is not a key of layout v1" for key in listing.unexpected)
    manifests, errors = read_many(listing.manifest_keys(), lambda key: read_manifest(store, key))
    report.problems.extend(errors.values())
    left_out = {(objects.repo, sha): read_unmirrored(store, objects.repo, sha)
                for objects in listing.repos.values() for sha in objects.unmirrored}
    expected: dict[str, Expectation] = {}
    for manifest in manifests.values():
        skip = left_out.get((manifest.repo, manifest.sha), frozenset())  # bodies the patterns left out
        for entry in manifest.files:
            if entry.path not in skip:
                expected.setdefault(entry.sha256, Expectation()).add(manifest, entry)
    for sha256, exp in expected.items():
        if len(exp.sizes) > 1:
            report.problems.append(f"manifests disagree on the size of body {sha256}: {sorted(exp.sizes)} "
                                   f"({', '.join(exp.named_by())})")
    published = {str(o.repo): o for o in listing.repos.values() if o.refs is not None}
    all_refs, refs_errors = read_many(published, lambda name: read_refs(store, published[name].repo))
    for name, objects in published.items():
        if name in refs_errors:
            report.problems.append(refs_errors[name])
            continue
        refs = all_refs[name]
        for sha in sorted(refs.all_shas() - objects.manifests.keys()):
            names = sorted(n for kind in REF_KINDS
                           for n, s in getattr(refs, kind).items() if s == sha)
            report.problems.append(f"{objects.repo}: ref(s) {', '.join(names)} point at {sha} "
                                   "but its manifest is missing: run `hubmirror sync --force` for this repo")
    return expected


def _choose(store: Store, universe: list[str], sample: int | None, report: VerifyReport) -> list[str]:
    if sample is None:
        return universe
    try:
        cursor = store.get_json(VERIFY_CURSOR)
    except ValueError:  # a damaged cursor only costs the rotation its place: start over
        cursor = None
    cursor = cursor if isinstance(cursor, dict) else {}
    after = cursor.get("after") if isinstance(cursor.get("after"), str) else None
    chosen, wrapped = pick_sample(universe, after, sample)
    cycle = (cursor["cycle"] if isinstance(cursor.get("cycle"), int) else 0) + (1 if wrapped else 0)
    report.cursor = {"after": chosen[-1] if chosen else after, "started_after": after, "cycle": cycle,
                     "wrapped": wrapped}
    return chosen


def _hash_all(store: Store, shas: list[str], blobs: dict[str, ObjectInfo], expected: dict[str, Expectation],
              report: VerifyReport, progress: Progress | None, workers: int) -> None:
    def one(sha256: str) -> tuple[str, str | None, str]:
        try:
            problem, detail = check_body(store, sha256, blobs[sha256], expected.get(sha256), progress)
        except HubmirrorError as exc:
            return sha256, "error", str(exc)
        return sha256, problem, detail

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for sha256, problem, detail in pool.map(one, shas):
            if problem == "error":
                report.errors.append(f"body {sha256}: {detail}")
                continue
            report.checked += 1
            report.bytes_checked += blobs[sha256].size
            if problem is None:
                continue
            exp = expected.get(sha256)
            report.bodies.append(BodyProblem(sha256, problem, detail, exp.named_by() if exp else []))
    report.hash_seconds = round(time.monotonic() - started, 6)


# -- repair -------------------------------------------------------------------------------------

def _repair(settings: Settings, store: Store, report: VerifyReport, expected: dict[str, Expectation]) -> None:
    from mirror_core.transfer import fetch_body
    from mirror_core.upstream import Upstream

    upstream: Upstream | None = None
    for body in report.bodies:
        exp = expected.get(body.sha256)
        if exp is None:
            # Wrong bytes under a content address no manifest names: a later sync could reuse the key
            # and publish them, so they go now instead of waiting for gc.
            store.delete(blob_key(body.sha256))
            body.repair = REMOVED
            continue
        upstream = upstream or Upstream(settings)
        not_found: list[str] = []
        failures: list[str] = []
        for repo, sha, entry in exp.names:
            where = f"{repo}@{sha}:{entry.path}"
            try:
                fetch_body(settings, store, upstream, repo, sha, entry, overwrite=body.problem == "corrupt")
            except UpstreamNotFoundError as exc:
                not_found.append(f"{where}: {exc}")
                continue
            except HubmirrorError as exc:
                failures.append(f"{where}: {type(exc).__name__}: {exc}")
                continue
            info = store.stat(blob_key(body.sha256))
            problem, detail = ("missing", "still absent after the fetch") if info is None else \
                check_body(store, body.sha256, info, exp)
            if problem is None:
                body.repair = "repaired"
                break
            failures.append(f"{where}: after re-fetch the body is {problem}: {detail}")
        else:
            if not_found and not failures:
                body.repair = "unrecoverable: the upstream no longer has it (" + "; ".join(not_found) + ")"
            else:
                body.repair = "failed: " + "; ".join(failures + not_found)
