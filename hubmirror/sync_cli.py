"""`hubmirror sync | trending | status`: terminal front-ends over sync, trending and the bucket.

Progress bars go to stderr (bytes, rate); results are one line per repo and one line per failure;
the exit code is 0 only if everything asked for was mirrored.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from hubmirror.terminal import err, failure, out
from mirror_core.catalog import build_catalog
from mirror_core.errors import CorruptObjectError, HubmirrorError, InvalidInputError, UpstreamAuthError
from mirror_core.inventory import list_repos
from mirror_core.layout import RepoRef
from mirror_core.manifest import Refs, hf_date
from mirror_core.reports import RunReport, new_run_id
from mirror_core.selection import RepoPlan, plan
from mirror_core.settings import Settings
from mirror_core.store import Store
from mirror_core.sync import RepoSyncResult, check_revisions, stored_manifest, sync_repo
from mirror_core.trending import refresh_trending
from mirror_core.upstream import Upstream


def _plans(args: argparse.Namespace, settings: Settings, store: Store) -> list[RepoPlan]:
    revisions = check_revisions(args.revision)
    configured = {r.repo: r for r in settings.selection.repos}  # a configured entry lends its allow/ignore patterns
    plans = []
    for repo_id in args.repo_ids:
        entry = configured.get(RepoRef.parse(repo_id, args.type))
        plans.append(RepoPlan(repo_id, args.type, revisions, entry.allow_patterns if entry else None,
                              entry.ignore_patterns if entry else None, source="request"))
    if args.all:
        known = {p.repo for p in plans}
        plans += [p for p in plan(settings, store) if p.repo not in known]
    return plans


def _line(result: RepoSyncResult) -> str:
    revs = ", ".join(f"{name}={sha[:12]}" for name, sha in result.revisions.items()) or "-"
    if result.skipped:
        return f"[green]current[/green] {result.repo}  {revs}"
    status = "[green]synced[/green]" if result.ok else "[red]FAILED[/red]"
    return (f"{status} {result.repo}  {revs}  fetched {result.files_fetched} files ({decimal(result.bytes_fetched)}), "
            f"reused {result.files_reused} ({decimal(result.bytes_reused)}) in {result.seconds:.1f}s")


def run_sync(args: argparse.Namespace, settings: Settings) -> int:
    if not args.repo_ids and not args.all:
        raise InvalidInputError("give one or more REPO_IDs, or --all for the configured selection and trending")
    store = Store(settings.s3)
    store.ensure_bucket()
    plans = _plans(args, settings, store)
    if not plans:
        err.print("nothing to sync: no repos configured (selection.repos) and no trending snapshot "
                  "(run `hubmirror trending`)")
        return 0
    upstream = Upstream(settings)
    run_id = new_run_id("sync")
    started = datetime.now(UTC)
    results: list[RepoSyncResult] = []
    fatal: str | None = None
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), console=err, transient=True)
    with progress:
        for item in plans:
            try:
                result = sync_repo(settings, item.repo, item.revisions, allow_patterns=item.allow_patterns,
                                   ignore_patterns=item.ignore_patterns, force=getattr(args, "force", False),
                                   run_id=run_id, progress=progress, write_report=False, store=store,
                                   upstream=upstream)
            except UpstreamAuthError as exc:
                fatal = str(exc)
                results.append(RepoSyncResult(item.repo, ok=False, error=fatal, errors=[fatal]))
                break
            results.append(result)
            progress.console.print(_line(result))
            for message in result.errors:
                failure(message, label="  error", console=progress.console)
    ok = fatal is None and all(r.ok for r in results) and len(results) == len(plans)
    key = RunReport.sync(run_id, [r.to_dict() for r in results], planned=len(plans), started_at=started).write(store)
    try:
        build_catalog(settings, store)  # serve lists and searches from it, as after a DAG run
    except HubmirrorError as exc:
        err.print(f"catalog not rebuilt: {exc}")
    failed = [r for r in results if not r.ok]
    fetched = sum(r.bytes_fetched for r in results)
    summary = (f"{len(results) - len(failed)}/{len(plans)} repos ok, fetched {decimal(fetched)}"
               f", reused {decimal(sum(r.bytes_reused for r in results))}; report {key}")
    err.print(("[green]" if ok else "[red]") + summary + "[/]")
    if fatal:
        failure(fatal)
    return 0 if ok else 1


def run_trending(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.s3)
    snapshot = refresh_trending(settings, store)
    if args.json:
        out.print_json(json.dumps(snapshot.to_dict()))
        return 0
    table = Table(title=f"trending snapshot {snapshot.key}")
    for column in ("rank", "type", "repo", "selected", "reason"):
        table.add_column(column)
    for item in snapshot.considered:
        table.add_row(str(item.get("rank")), item["type"], item["id"], "yes" if item["selected"] else "no",
                      item.get("reason") or "")
    out.print(table)
    err.print(f"{len(snapshot.repos)} of {len(snapshot.considered)} repos selected")
    return 0


def repo_status(store: Store, repo: RepoRef, refs: Refs) -> dict[str, Any]:
    """One status row: refs, size and file count of the default branch's manifest, last update."""
    chosen = refs.default_revision()
    head = chosen[1] if chosen else None
    size = files = None
    manifest = stored_manifest(store, repo, head) if head else None
    if manifest is not None:
        size, files = manifest.total_size, len(manifest.files)
    return {"type": repo.singular_type, "id": repo.repo_id, "branches": refs.branches, "tags": refs.tags,
            "converts": refs.converts, "pull_requests": refs.pull_requests, "head": head, "size": size,
            "files": files, "updated_at": hf_date(refs.updated_at), "upstream": refs.upstream}


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.s3)
    store.check_format()
    rows = []
    problems = []
    for repo, objects in sorted(list_repos(store).repos.items()):
        if objects.refs is None:
            continue
        raw = store.get_bytes(objects.refs.key)
        if raw is None:
            continue
        try:
            rows.append(repo_status(store, repo, Refs.from_json(raw, objects.refs.key)))
        except CorruptObjectError as exc:
            problems.append(f"{repo}: {exc}")
    if args.json:
        out.print_json(json.dumps({"repos": rows, "problems": problems}))
    else:
        # refs go on a dim second line under the repo, so 80 columns hold every column whole
        table = Table(title=f"{len(rows)} mirrored repos in {settings.s3_bucket}")
        table.add_column("type", no_wrap=True)
        table.add_column("repo / refs", overflow="fold")
        for column in ("size", "files", "updated (UTC)"):
            table.add_column(column, no_wrap=True)
        for row in rows:
            refs = " ".join([*(f"{k}={v[:8]}" for k, v in row["branches"].items()),
                             *(f"tag:{k}" for k in row["tags"]), *(f"convert:{k}" for k in row["converts"])])
            table.add_row(row["type"], f"{row['id']}\n[dim]{escape(refs)}[/dim]",
                          decimal(row["size"]) if row["size"] is not None else "?",
                          str(row["files"] if row["files"] is not None else "?"),
                          row["updated_at"][:16].replace("T", " "))
        out.print(table)
        for problem in problems:
            failure(problem)
    return 1 if problems else 0
