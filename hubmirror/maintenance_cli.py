"""`hubmirror verify` and `hubmirror gc`: progress while they run, a summary when they end.

The exit code is 0 only when the run left the bucket sound (verify: nothing broken remains;
gc: every manifest was readable and retention found no broken refs), so scripts and CI can act on it.
"""

from __future__ import annotations

import argparse

from rich.filesize import decimal
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from hubmirror.terminal import err, failure, out
from mirror_core.gc import GcReport, retain_and_collect
from mirror_core.layout import validate_sha256
from mirror_core.settings import Settings
from mirror_core.store import Store
from mirror_core.verify import VerifyReport, verify

SHOWN = 20  # items listed per category in the summary; the run report has more


class _Bar:
    """Adapts a rich progress bar to verify's progress protocol."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("listing", total=None)

    def start(self, bodies: int, total_bytes: int) -> None:
        self.progress.update(self.task, description=f"hashing {bodies} bodies", total=total_bytes)

    def advance(self, nbytes: int) -> None:
        self.progress.advance(self.task, nbytes)


def _open_store(settings: Settings) -> Store:
    store = Store(settings.s3)
    store.check_format()
    return store


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    if args.sample is not None and args.sample < 1:
        failure(f"--sample must be a positive number of bodies, got {args.sample}")
        return 2
    bodies = [validate_sha256(b.lower()) for b in args.body] if args.body else None
    store = _open_store(settings)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        report = verify(settings, store, sample=args.sample, repair=args.repair, progress=_Bar(progress),
                        bodies=bodies)
    print_verify(report)
    return 0 if report.ok else 1


def print_verify(report: VerifyReport) -> None:
    table = Table(title=f"verify {report.run_id} ({report.mode}{' + repair' if report.repair else ''})",
                  show_header=False)
    table.add_row("repos / manifests", f"{report.repos} / {report.manifests}")
    table.add_row("bodies in bucket", f"{report.blobs} ({decimal(report.blob_bytes)})")
    table.add_row("bodies re-hashed", f"{report.checked} ({decimal(report.bytes_checked)}, "
                                      f"{decimal(int(report.throughput))}/s)")
    table.add_row("missing / corrupt", f"{len(report.missing)} / {len(report.corrupt)}")
    if report.repair:
        table.add_row("repaired / still broken", f"{report.repaired} / {len(report.unresolved)}")
    table.add_row("orphans (gc will reclaim)", f"{report.orphans} ({decimal(report.orphan_bytes)})")
    if report.cursor:
        table.add_row("sample cursor", f"after {report.cursor['after'] or '-'} (cycle {report.cursor['cycle']})")
    table.add_row("report", report.report_key or "-")
    table.add_row("seconds", f"{report.seconds:.1f}")
    out.print(table)
    for body in report.bodies[:SHOWN]:
        state = "[green]repaired[/green]" if body.resolved else f"[red]{body.repair or 'not repaired'}[/red]"
        out.print(f"  {body.problem} {body.sha256}: {escape(body.detail)}; {state}")
        for name in body.named_by[:3]:
            out.print(f"      named by {name}")
    _more(len(report.bodies))
    for line in (report.problems + report.errors)[:SHOWN]:
        failure(line, label="  problem", console=out)
    _more(len(report.problems) + len(report.errors))
    if report.bodies and not report.repair:
        out.print("run `hubmirror verify --repair` to re-fetch missing and corrupt bodies from the upstream")
    out.print("[green]ok[/green]" if report.ok else "[red]not ok[/red]")


def run_gc(args: argparse.Namespace, settings: Settings) -> int:
    store = _open_store(settings)
    with err.status("applying retention, then marking and sweeping bodies"):
        report = retain_and_collect(settings, store, dry_run=args.dry_run)
    print_gc(report)
    return 0 if report.ok else 1


def print_gc(report: GcReport) -> None:
    retention = report.retention or {}
    removed = retention.get("removed", [])
    verb = "would be" if report.dry_run else "were"
    table = Table(title=f"gc {report.run_id}{' (dry run)' if report.dry_run else ''}", show_header=False)
    table.add_row("retention", f"keep last {retention.get('keep_last')} per branch + every ref target")
    table.add_row(f"manifests that {verb} removed", f"{len(removed)} of {retention.get('manifests', 0)}")
    table.add_row("manifests inside the grace period", str(len(retention.get("young", []))))
    table.add_row("bodies in bucket", f"{report.blobs} ({decimal(report.blob_bytes)})")
    table.add_row("bodies named by retained manifests", f"{report.referenced} ({decimal(report.referenced_bytes)})")
    table.add_row(f"unnamed, younger than {report.grace_seconds}s (kept)",
                  f"{report.young} ({decimal(report.young_bytes)})")
    table.add_row(f"bodies that {verb} deleted", str(report.deleted))
    table.add_row("bytes reclaimed" + (" (would be)" if report.dry_run else ""), decimal(report.bytes_reclaimed))
    table.add_row(f"unfinished uploads that {verb} aborted", str(report.uploads_aborted))
    if report.missing:
        table.add_row("named but missing", f"{report.missing} (run `hubmirror verify --repair`)")
    table.add_row("report", report.report_key or "-")
    out.print(table)
    if report.dry_run:
        for key in removed[:SHOWN]:
            out.print(f"  manifest {key}")
        _more(len(removed))
        for blob in report.deleted_blobs[:SHOWN]:
            out.print(f"  body {blob['sha256']} ({decimal(blob['size'])})")
        _more(report.deleted)
    for line in (retention.get("problems", []) + report.problems + report.warnings)[:SHOWN]:
        failure(line, label="  problem", console=out)
    out.print("[green]ok[/green]" if report.ok else "[red]not ok[/red]")


def _more(total: int) -> None:
    if total > SHOWN:
        out.print(f"  ... and {total - SHOWN} more (see the run report)")
