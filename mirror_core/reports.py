"""Run reports under `state/runs/<yyyy>/<mm>/<dd>/<run-id>.json`: what a sync/verify/gc run did.

They are the mirror's own history (serve's jobs page, operators' audits), so they are written even
when the run failed. Every writer (the CLI, `sync_repo`, the DAGs) goes through `RunReport`, so a report
has one shape whoever ran it: kind, run id, start/end, `ok`, and the run's summary.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mirror_core.layout import RepoRef, run_report_key
from mirror_core.manifest import hf_date
from mirror_core.store import Store

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:+-]")


def new_run_id(kind: str, when: datetime | None = None) -> str:
    """A unique, sortable run id such as `sync-20250101T120000Z-1a2b3c4d`."""
    when = when or datetime.now(UTC)
    return f"{kind}-{when:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def safe_run_id(run_id: str) -> str:
    """Airflow run ids (`manual__2025-01-01T00:00:00+00:00`) are mostly safe; replace anything else."""
    return _UNSAFE.sub("_", run_id)[:150] or "run"


def repo_run_id(run_id: str, repo: RepoRef) -> str:
    """The report id of one repo inside a run that syncs many repos in parallel (one mapped task each)."""
    return safe_run_id(f"{run_id}+{repo.singular_type}+{repo.repo_id.replace('/', '+')}")


_TOTALS = ("files_fetched", "files_reused", "bytes_fetched", "bytes_reused")


@dataclass
class RunReport:
    """One run report. `details` is the run's own summary (a gc or verify report, who ran a sync).

    For a sync (`RunReport.sync`), `repos` holds each synced repo's result (`RepoSyncResult.to_dict()`) and
    `failed` the repos that have no result (their task failed before returning one); the totals, `synced`
    and `ok` are computed here and nowhere else.
    """

    kind: str
    run_id: str
    ok: bool
    started_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def sync(cls, run_id: str, repos: list[dict[str, Any]], *, planned: int, started_at: datetime | None = None,
             failed: list[dict[str, Any]] | None = None, **details: Any) -> RunReport:
        """A sync run of `planned` repos: `repos` returned a result, `failed` did not."""
        unsynced = [{"repo_id": r["repo_id"], "repo_type": r["repo_type"], "error": r.get("error")}
                    for r in repos if not r.get("ok")] + list(failed or [])
        errors = [e for r in repos for e in r.get("errors") or []]
        errors += [f["error"] for f in failed or [] if f.get("error")]
        summary = {"planned": planned, "synced": sum(1 for r in repos if r.get("ok")), "failed": unsynced,
                   **{k: sum(int(r.get(k) or 0) for r in repos) for k in _TOTALS}, "errors": errors,
                   "repos": repos, **details}
        return cls("sync", run_id, ok=not unsynced and len(repos) == planned, started_at=started_at, details=summary)

    def to_dict(self) -> dict[str, Any]:
        started = {"started_at": hf_date(self.started_at)} if self.started_at else {}
        return {"kind": self.kind, "run_id": safe_run_id(self.run_id), **started, **self.details, "ok": self.ok}

    def write(self, store: Store) -> str:
        """Store the report (stamped `written_at`) and return its key."""
        now = datetime.now(UTC)
        body = {**self.to_dict(), "written_at": hf_date(now)}
        key = run_report_key(body["run_id"], now)
        store.put_json(key, body)
        return key
