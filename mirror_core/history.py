"""The mirror's history read back: run reports (`state/runs/`) and trending snapshots (`state/trending/`).

Shared by the catalog build (per-repo last sync outcome for the status feed) and serve's jobs API, so both
read the same objects the same way. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mirror_core.errors import CorruptObjectError
from mirror_core.inventory import read_many
from mirror_core.layout import RUNS_PREFIX, TRENDING_LATEST, TRENDING_PREFIX
from mirror_core.store import Store


@dataclass(frozen=True)
class JobRef:
    """One job: a run report (sync, verify, gc) or a trending snapshot, by its key."""

    id: str
    kind: str  # sync | verify | gc | trending | ...
    key: str
    when: datetime | None


def list_jobs(store: Store) -> list[JobRef]:
    """Every job, newest first (one listing of each prefix; no object is read)."""
    jobs = []
    for obj in store.list(RUNS_PREFIX):
        if obj.key.endswith(".json"):
            run_id = obj.key.rsplit("/", 1)[-1].removesuffix(".json")
            jobs.append(JobRef(run_id, run_id.split("-", 1)[0].split("_", 1)[0], obj.key, obj.last_modified))
    for obj in store.list(TRENDING_PREFIX):
        if obj.key.endswith(".json") and obj.key != TRENDING_LATEST:
            stamp = obj.key.rsplit("/", 1)[-1].removesuffix(".json")
            jobs.append(JobRef(f"trending-{stamp}", "trending", obj.key, obj.last_modified))
    return sorted(jobs, key=lambda j: (j.when is not None, j.when or datetime.min, j.id), reverse=True)


def read_jobs(store: Store, jobs: list[JobRef]) -> dict[str, dict[str, Any]]:
    """The documents of some jobs, by job id (unreadable ones are left out)."""
    by_key = {j.key: j.id for j in jobs}
    found, _ = read_many(by_key, lambda key: _json(store, key))
    return {by_key[k]: v for k, v in found.items() if isinstance(v, dict)}


def _json(store: Store, key: str) -> Any:
    try:
        return store.get_json(key)
    except ValueError as exc:  # not JSON
        raise CorruptObjectError(f"{key}: {exc}") from None


def repo_outcomes(reports: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(repo type, id) -> the newest sync outcome among `reports` (sync run reports, any order)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for report in sorted(reports, key=lambda r: str(r.get("written_at") or "")):
        if report.get("kind") != "sync":
            continue
        for repo in report.get("repos") or []:
            if not isinstance(repo, dict) or "repo_type" not in repo or "repo_id" not in repo:
                continue
            out[(repo["repo_type"], repo["repo_id"])] = {
                "ok": bool(repo.get("ok")), "error": repo.get("error"), "run_id": report.get("run_id"),
                "started": report.get("started_at"), "ended": report.get("written_at")}
    return out
