"""Sync one repo from the upstream into the bucket (ARCHITECTURE.md invariants 1-5).

Per wanted revision: resolve it to a commit sha (one `refs` call covers every revision); if the
published ref already points there and its manifest exists, stop. Otherwise list the commit's
tree, fetch only the bodies the bucket lacks (each verified before it becomes visible), write the
immutable `commits/<sha>.json`, and publish every moved ref with ONE put of `refs.json`, after an
optimistic check that nobody else changed it meanwhile. A crash anywhere before that put leaves
the old state readable; the next run finds the uploaded bodies and finishes the job.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from rich.progress import Progress, TaskID

from mirror_core.access import access_in, access_of, upstream_info
from mirror_core.errors import (
    ConflictError,
    GatedRepoError,
    HubmirrorError,
    UpstreamAuthError,
    UpstreamNotFoundError,
    UpstreamRevisionNotFoundError,
)
from mirror_core.lastcommit import LastCommit, last_commits
from mirror_core.layout import RepoRef, commit_key, is_commit_sha, refs_key, validate_revision
from mirror_core.manifest import (
    REF_KINDS,
    CommitManifest,
    DirEntry,
    FileEntry,
    LfsInfo,
    RefKind,
    Refs,
    ref_kind,
)
from mirror_core.mirrored import read_unmirrored, selected, write_unmirrored
from mirror_core.popularity import refresh_after_sync
from mirror_core.reports import RunReport, new_run_id, repo_run_id
from mirror_core.reuse import ReusePolicy
from mirror_core.settings import Settings
from mirror_core.store import Store
from mirror_core.transfer import FetchResult, Transfer
from mirror_core.upstream import Upstream, UpstreamFile

log = logging.getLogger("hubmirror.sync")
DEFAULT_REVISIONS = ["main"]
# Repo info fields that change without a commit (counters, scores) or only make sense upstream. The counters
# live in the popularity snapshot instead (mirror_core.popularity), refreshed by every sync.
VOLATILE_INFO_FIELDS = frozenset({
    "downloads", "downloadsAllTime", "likes", "trendingScore", "spaces", "usedStorage", "inference",
    "inferenceProviderMapping", "securityRepoStatus", "resourceGroup", "xetEnabled", "childrenModelCount",
})
_GLOB_CHARS = frozenset("*?[")


@dataclass
class RepoSyncResult:
    """What one sync of one repo did. `ok` is False when any wanted revision could not be published."""

    repo: RepoRef
    ok: bool = True
    revisions: dict[str, str] = field(default_factory=dict)  # ref name (or sha) -> published commit sha
    files: int = 0  # files listed by the manifests of the synced commits
    files_fetched: int = 0
    files_reused: int = 0
    bytes_fetched: int = 0
    bytes_reused: int = 0
    skipped: bool = False  # every wanted revision was already current: nothing listed, nothing fetched
    retryable: bool = True  # False when retrying cannot help: the repo or revision is gone, gated or hidden
    error: str | None = None
    errors: list[str] = field(default_factory=list)  # one line per failure (file or revision)
    warnings: list[str] = field(default_factory=list)  # not failures, but worth a line (a pattern matched nothing)
    metadata_calls: int = 0
    seconds: float = 0.0
    report_key: str | None = None

    def fail(self, message: str) -> None:
        self.ok = False
        self.errors.append(message)
        self.error = self.error or message

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning(message)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["repo"] = str(self.repo)
        data["repo_id"] = self.repo.repo_id
        data["repo_type"] = self.repo.type
        return data


@dataclass(frozen=True)
class Target:
    """One revision to publish: a ref (kind, name) or a bare commit (kind None), and its sha."""

    kind: RefKind | None
    name: str
    sha: str


def is_glob(revision: str) -> bool:
    return any(c in _GLOB_CHARS for c in revision)


def check_revisions(revisions: list[str] | None) -> list[str]:
    """Validate wanted revisions (names, shas, fnmatch globs over branch and tag names or over one ref kind:
    `refs/pr/*`, `refs/heads/*`, `refs/tags/*`, `refs/convert/*`)."""
    revisions = list(revisions or DEFAULT_REVISIONS)
    for revision in revisions:
        if is_glob(revision):
            validate_revision(revision.replace("*", "x").replace("?", "x").replace("[", "x").replace("]", "x"))
        else:
            validate_revision(revision)
    return revisions


def resolve_targets(repo: RepoRef, revisions: list[str], remote: dict[str, dict[str, str]] | None,
                    result: RepoSyncResult) -> list[Target]:
    """Map wanted revisions to (ref, sha) using the upstream's refs; unknown names become errors."""
    targets: list[Target] = []
    for revision in revisions:
        if is_commit_sha(revision):
            targets.append(Target(None, revision, revision))
            continue
        assert remote is not None
        if is_glob(revision):  # refs/pr/*, refs/heads/*, ...: in that kind; a bare glob: branches and tags
            kinds = [ref_kind(revision)] if revision.startswith("refs/") else [(RefKind.BRANCHES, revision),
                                                                                (RefKind.TAGS, revision)]
            matched = [Target(kind, name, sha) for kind, pattern in kinds for name, sha in
                       sorted(remote.get(kind, {}).items()) if fnmatch.fnmatchcase(name, pattern)]
            if not matched:
                result.warn(f"{repo}: revision pattern {revision!r} matches no "
                            f"{' or '.join(kind.replace('_', ' ') for kind, _ in kinds)} upstream")
            targets += matched
            continue
        if revision.startswith("refs/"):
            kind, name = ref_kind(revision)
            candidates = [(kind, name)]
        else:
            candidates = [(RefKind.BRANCHES, revision), (RefKind.TAGS, revision)]
        found = next(((kind, name) for kind, name in candidates if name in remote[kind]), None)
        if found is None:
            result.fail(f"{repo}: revision {revision!r} not found upstream (branches: "
                        f"{', '.join(sorted(remote[RefKind.BRANCHES])) or 'none'}; tags: "
                        f"{', '.join(sorted(remote[RefKind.TAGS])) or 'none'})")
            continue
        targets.append(Target(found[0], found[1], remote[found[0]][found[1]]))
    if repo.type == "datasets" and remote is not None:
        targets += [Target(RefKind.CONVERTS, name, sha) for name, sha in sorted(remote[RefKind.CONVERTS].items())]
    unique: dict[tuple[str | None, str], Target] = {}
    for target in targets:
        unique.setdefault((target.kind, target.name), target)
    return list(unique.values())


def trim_info(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k not in VOLATILE_INFO_FIELDS}


def read_refs_for_update(store: Store, repo: RepoRef) -> tuple[Refs | None, str | None]:
    """The published refs.json (parsed) and the ETag it was read with, for the conditional put at publish time."""
    got = store.get_with_etag(refs_key(repo))
    return (Refs.from_json(got[0], refs_key(repo)), got[1]) if got is not None else (None, None)


def publish_refs(store: Store, repo: RepoRef, refs: Refs, etag: str | None) -> None:
    """Flip refs.json in one conditional put on the version we read (None: it did not exist), so that of two
    writers only one can publish (single writer)."""
    key = refs_key(repo)
    try:
        store.put_if(key, refs.to_json(), etag)
    except ConflictError:
        raise ConflictError(f"{key} changed while {repo} was syncing (another sync of the same repo?); "
                            "nothing was published by this run, run it again") from None


def stored_manifest(store: Store, repo: RepoRef, sha: str) -> CommitManifest | None:
    """The published manifest of a commit, or None if there is none."""
    raw = store.get_bytes(commit_key(repo, sha))
    return CommitManifest.from_json(raw, commit_key(repo, sha)) if raw is not None else None


class _Progress:
    """Thread-safe adapter over an optional rich Progress: one bar per repo, one per large download."""

    def __init__(self, progress: Progress | None, label: str) -> None:
        self.progress = progress
        self.label = label
        self.repo_task: TaskID | None = None

    def start(self, total: int) -> None:
        if self.progress is not None:
            self.repo_task = self.progress.add_task(self.label, total=total)

    def done_bytes(self, n: int) -> None:
        if self.progress is not None and self.repo_task is not None:
            self.progress.update(self.repo_task, advance=n)

    def file(self, path: str, size: int) -> tuple[Callable[[int], None], Callable[[], None]]:
        if self.progress is None:
            return (lambda n: None), (lambda: None)
        progress = self.progress
        task = self.progress.add_task(f"  {path}", total=size) if size >= 8 * 1024**2 else None

        def advance(n: int) -> None:
            if task is not None:
                progress.update(task, advance=n)
            self.done_bytes(n)

        def finish() -> None:
            if task is not None:
                progress.remove_task(task)

        return advance, finish

    def stop(self) -> None:
        if self.progress is not None and self.repo_task is not None:
            self.progress.remove_task(self.repo_task)


class RepoSync:
    """The state of one sync_repo call (kept on an object so each step stays small)."""

    def __init__(self, settings: Settings, store: Store, upstream: Upstream, repo: RepoRef,
                 result: RepoSyncResult, allow_patterns: list[str] | None, ignore_patterns: list[str] | None,
                 progress: _Progress) -> None:
        self.settings, self.store, self.upstream, self.repo = settings, store, upstream, repo
        self.result = result
        self.allow_patterns, self.ignore_patterns = allow_patterns, ignore_patterns
        self.progress = progress
        self.known_sha256: dict[str, str] = {}  # git oid -> sha256, from manifests already published
        self.reuse = ReusePolicy(store, repo)
        self.learned_published = False
        self.completed = False  # complete() fetched bodies for an already published commit
        self._lock = threading.Lock()

    def learn(self, manifest: CommitManifest) -> None:
        self.reuse.learn(manifest)
        for entry in manifest.files:
            if entry.lfs is None:
                self.known_sha256[entry.oid] = entry.sha256

    def learn_published(self, refs: Refs | None, loaded: dict[str, CommitManifest]) -> None:
        """Index regular files' sha256 by oid from the published manifests (reading only those not `loaded`
        yet), so unchanged bodies need no GET."""
        self.learned_published = True
        for sha in sorted(refs.all_shas()) if refs else []:
            manifest = loaded.get(sha) or stored_manifest(self.store, self.repo, sha)
            if manifest is not None:
                self.learn(manifest)

    def previous(self, current: Refs | None, target: Target) -> CommitManifest | None:
        """The manifest this target's ref (else main) published before: per-path lastCommit is inherited from it."""
        if current is None:
            return None
        old = (getattr(current, target.kind).get(target.name) if target.kind else None) or current.branches.get("main")
        return stored_manifest(self.store, self.repo, old) if old else None

    def build_manifest(self, sha: str, previous: CommitManifest | None = None) -> CommitManifest | None:
        """List the commit upstream, make sure every body is stored and verified, write the manifest."""
        info = trim_info(self.upstream.repo_info(self.repo, sha))
        files, dirs = self.upstream.tree(self.repo, sha)
        commits = self.upstream.commits(self.repo, sha)
        chosen = [f for f in files if not f.lfs or self.selects(f.path)]  # see mirror_core.mirrored
        left_out = {f.path for f in files if _content_key(f) not in {_content_key(c) for c in chosen}}
        sha256s = self.fetch_all(sha, chosen)
        if sha256s is None:
            return None
        last = last_commits(self.upstream, self.repo, sha, files, dirs, previous)
        manifest = CommitManifest(
            repo_type=self.repo.type, repo_id=self.repo.repo_id, sha=sha, info=info, commits=commits,
            files=[_file_entry(f, cast(str, sha256s.get(_content_key(f)) or f.lfs_sha256), last.get(f.path))
                   for f in sorted(files, key=lambda f: f.path)],
            directories=[DirEntry(path=d.path, oid=d.oid, last_commit=last.get(d.path))
                         for d in sorted(dirs, key=lambda d: d.path)],
            upstream=self.settings.upstream_url,
        )
        key = commit_key(self.repo, sha)
        if self.store.stat(key) is None:
            write_unmirrored(self.store, self.repo, sha, left_out, self.allow_patterns, self.ignore_patterns)
            self.store.put_bytes(key, manifest.to_json(), "application/json")
        else:
            self.complete(manifest)
        self.learn(manifest)
        return manifest

    def selects(self, path: str) -> bool:
        return selected(path, self.allow_patterns, self.ignore_patterns)

    def complete(self, manifest: CommitManifest) -> bool:
        """Fetch the bodies an earlier, narrower sync left out that this sync's patterns select; False on failure."""
        missing = read_unmirrored(self.store, self.repo, manifest.sha)
        wanted = [f for f in manifest.files if f.path in missing and self.selects(f.path)]
        if not wanted:
            return True
        got = self.fetch_all(manifest.sha, [UpstreamFile(f.path, f.size, f.oid, f.sha256 if f.lfs else None,
                                                         f.lfs.pointer_size if f.lfs else None) for f in wanted])
        if got is None:
            return False
        self.completed = True
        write_unmirrored(self.store, self.repo, manifest.sha, missing - {f.path for f in wanted},
                         self.allow_patterns, self.ignore_patterns)
        return True

    def fetch_all(self, sha: str, files: list[UpstreamFile]) -> dict[tuple[str, str], str] | None:
        """Fetch every distinct body (by content) in parallel; sha256 by content key, or None on any failure."""
        unique: dict[tuple[str, str], UpstreamFile] = {}
        for f in files:
            unique.setdefault(_content_key(f), f)
        self.progress.start(sum(f.size for f in unique.values()))
        done: dict[tuple[str, str], str] = {}
        failed = False
        gated: GatedRepoError | None = None  # the token may read no file: one repo-level error, not one per file
        transfer = Transfer(self.settings, self.store, self.upstream)

        def one(key: tuple[str, str], f: UpstreamFile) -> None:
            nonlocal failed, gated
            if gated is not None:
                return
            advance, finish = self.progress.file(f.path, f.size)
            try:
                reuse = f.lfs_sha256 is None or self.reuse.may_reuse(f.lfs_sha256)
                got = transfer.fetch(self.repo, sha, f, known_sha256=self.known_sha256.get(f.oid), reuse=reuse,
                                     on_bytes=advance)
            except GatedRepoError as exc:
                with self._lock:
                    failed, gated = True, gated or exc
                return
            except HubmirrorError as exc:
                with self._lock:
                    failed = True
                    self.result.fail(f"{self.repo}@{sha[:12]}: {f.path}: {exc}")
                    if isinstance(exc, UpstreamAuthError | UpstreamNotFoundError):
                        self.result.retryable = False
                if isinstance(exc, UpstreamAuthError):
                    raise
                return
            finally:
                finish()
            self.count(got)
            if got.reused:
                self.progress.done_bytes(got.size)
            with self._lock:
                done[key] = got.sha256

        try:
            with ThreadPoolExecutor(self.settings.transfer.concurrency, thread_name_prefix="hubmirror-file") as pool:
                futures = [pool.submit(one, key, f) for key, f in unique.items()]
                for future in futures:
                    future.result()
        finally:
            transfer.close()
            self.progress.stop()
        if gated is not None:
            raise gated
        return None if failed else done

    def count(self, got: FetchResult) -> None:
        with self._lock:
            if got.reused:
                self.result.files_reused += 1
                self.result.bytes_reused += got.size
            else:
                self.result.files_fetched += 1
                self.result.bytes_fetched += got.bytes_fetched


def _content_key(f: UpstreamFile) -> tuple[str, str]:
    return ("sha256", f.lfs_sha256) if f.lfs_sha256 else ("oid", f.oid)


def _file_entry(f: UpstreamFile, sha256: str, last_commit: LastCommit | None = None) -> FileEntry:
    lfs = LfsInfo(pointer_size=f.pointer_size or 0) if f.lfs_sha256 else None
    return FileEntry(path=f.path, size=f.size, sha256=sha256, oid=f.oid, lfs=lfs, last_commit=last_commit)


def sync_repo(settings: Settings, repo: RepoRef, revisions: list[str] | None = None, *,
              allow_patterns: list[str] | None = None, ignore_patterns: list[str] | None = None,
              force: bool = False, run_id: str | None = None, progress: Progress | None = None,
              write_report: bool = True, store: Store | None = None,
              upstream: Upstream | None = None) -> RepoSyncResult:
    """Mirror the wanted revisions (default `main`; names, shas or globs) of one repo.

    Raises only for invalid input (InvalidInputError) and for UpstreamAuthError when the upstream
    refuses the service token itself (every further repo would fail the same way, so Airflow should
    fail fast); every other failure (gated or missing repo, network, S3, a body that fails its hash,
    a concurrent publish) is recorded in `.error`/`.errors` with `.ok = False`, and nothing
    unverified is published. A run report is written under state/runs/ unless `write_report=False`
    (the CLI writes one report for all repos instead).
    """
    revisions = check_revisions(revisions)
    started = time.monotonic()
    started_at = datetime.now(UTC)
    result = RepoSyncResult(repo=repo)
    store = store or Store(settings.s3)
    upstream = upstream or Upstream(settings)
    calls_before = upstream.calls
    auth_error: UpstreamAuthError | None = None
    try:
        info = _sync(settings, store, upstream, repo, revisions, result, allow_patterns, ignore_patterns, force,
                     _Progress(progress, str(repo)))
        if result.revisions and (warning := refresh_after_sync(store, upstream, repo, info)):
            log.warning(warning)
    except UpstreamAuthError as exc:
        result.fail(_about(repo, exc))
        result.retryable = False
        if not isinstance(exc, GatedRepoError):
            auth_error = exc
    except UpstreamNotFoundError as exc:
        result.fail(_about(repo, exc))
        result.retryable = False
    except (HubmirrorError, OSError) as exc:
        result.fail(_about(repo, exc))
    except ValueError as exc:  # pydantic: the upstream listed something a manifest cannot hold
        result.fail(f"{repo}: the upstream sent data the mirror cannot store ({exc}); nothing was published")
    result.metadata_calls = upstream.calls - calls_before
    result.seconds = round(time.monotonic() - started, 3)
    if write_report:
        try:
            report = RunReport.sync(repo_run_id(run_id, repo) if run_id else new_run_id("sync"),
                                    [result.to_dict()], planned=1, started_at=started_at)
            result.report_key = report.write(store)
        except HubmirrorError as exc:
            result.fail(f"{repo}: run report not written: {exc}")
    if auth_error is not None:
        raise auth_error
    return result


def _about(repo: RepoRef, exc: BaseException) -> str:
    """An error line that names the repo once."""
    return str(exc) if str(repo) in str(exc) else f"{repo}: {exc}"



def _sync(settings: Settings, store: Store, upstream: Upstream, repo: RepoRef, revisions: list[str],
          result: RepoSyncResult, allow_patterns: list[str] | None, ignore_patterns: list[str] | None,
          force: bool, progress: _Progress) -> dict[str, Any]:
    """Sync the wanted revisions; returns the repo info read on the way (access and popularity come from it)."""
    store.ensure_bucket()
    current, current_etag = read_refs_for_update(store, repo)

    def restrict(refs: Refs) -> None:
        publish_refs(store, repo, refs, current_etag)

    single = _single_name(repo, revisions)
    try:
        info = upstream_info(upstream, repo, current, restrict, revision=single)
    except UpstreamRevisionNotFoundError:
        single, info = None, upstream_info(upstream, repo, current, restrict)  # the refs listing says what there is
    access = access_of(info)
    remote = None
    targets = _unchanged(current, single, info.get("sha")) if not force else None
    if targets is None:
        if not all(is_commit_sha(r) for r in revisions):
            remote = upstream.refs(repo, include_prs=any(r.startswith(RefKind.PULL_REQUESTS.prefix) for r in revisions))
        targets = resolve_targets(repo, revisions, remote, result)
    if not targets:
        if result.ok:
            raise UpstreamNotFoundError(f"{repo}: no upstream revision matches {revisions}")
        return info

    state = RepoSync(settings, store, upstream, repo, result, allow_patterns, ignore_patterns, progress)
    published: dict[str, CommitManifest] = {}  # sha -> manifest
    failed: set[str] = set()
    all_current = not force and all(
        target.kind is None or (current is not None and getattr(current, target.kind).get(target.name) == target.sha)
        for target in targets)
    for target in targets:
        sha = target.sha
        if sha in published or sha in failed:
            continue
        manifest = None if force else stored_manifest(store, repo, sha)
        if manifest is not None:
            if state.complete(manifest):
                published[sha] = manifest
                all_current = all_current and not state.completed
            else:
                failed.add(sha)
            continue
        all_current = False
        if not state.learned_published:
            state.learn_published(current, published)
        manifest = state.build_manifest(sha, state.previous(current, target))
        if manifest is None:
            failed.add(sha)
        else:
            published[sha] = manifest

    for target in targets:
        if target.sha in published:
            result.revisions[target.name] = target.sha
    result.files += sum(len(manifest.files) for manifest in published.values())

    refs = current or Refs(upstream=settings.upstream_url)
    before = _tables(refs)
    for target in targets:
        if target.kind is not None and target.sha in published:
            refs = refs.with_ref(target.kind, target.name, target.sha)
    mirrored = published.keys() | (current.all_shas() if current else set())
    for name, sha in sorted((remote or {}).get(RefKind.TAGS, {}).items()):
        if sha in mirrored:
            refs = refs.with_ref(RefKind.TAGS, name, sha)
    if _tables(refs) != before or (current is not None and access_in(current) != access):
        refs = refs.model_copy(update={"upstream": settings.upstream_url, "updated_at": datetime.now(UTC),
                                       "private": access[0], "gated": access[1]})
        publish_refs(store, repo, refs, current_etag)
    result.skipped = all_current and not failed and result.ok
    return info


def _single_name(repo: RepoRef, revisions: list[str]) -> str | None:
    """The one branch or tag name wanted, if the repo info at it can settle an unchanged sync by itself
    (datasets also follow their converts, which only the refs listing names)."""
    if repo.type == "datasets" or len(revisions) != 1:
        return None
    name = revisions[0]
    return None if is_glob(name) or is_commit_sha(name) or name.startswith("refs/") else name


def _unchanged(current: Refs | None, name: str | None, sha: str | None) -> list[Target] | None:
    """The target of a single wanted ref that still names the published commit: invariant 4's one metadata
    call. Otherwise None, and the refs listing decides (it also records tags on mirrored commits)."""
    if current is None or name is None or not sha:
        return None
    for kind in (RefKind.BRANCHES, RefKind.TAGS):
        if getattr(current, kind).get(name) == sha:
            return [Target(kind, name, sha)]
    return None


def _tables(refs: Refs) -> tuple[dict[str, str], ...]:
    return tuple(getattr(refs, kind) for kind in REF_KINDS)

