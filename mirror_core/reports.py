"""Run reports under `state/runs/<yyyy>/<mm>/<dd>/<run-id>.json`: what a sync/verify/gc run did.

They are the mirror's own history (serve's jobs page, operators' audits), so they are written even
when the run failed, and each names its kind, run id, start/end and whatever summary the run gives.
"""

from __future__ import annotations

import re
import uuid
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


def write_run_report(store: Store, kind: str, run_id: str, summary: dict[str, Any]) -> str:
    """Store one run report and return its key."""
    now = datetime.now(UTC)
    run_id = safe_run_id(run_id)
    key = run_report_key(run_id, now)
    body = {"kind": kind, "run_id": run_id, "written_at": hf_date(now), **summary}
    store.put_json(key, body)
    return key
