"""Run reports: one shape whoever writes them (CLI, sync_repo, DAG), totals computed in one place."""

from datetime import UTC, datetime

from mirror_core.reports import RunReport

# The keys every sync run report has, so serve's jobs API and the status feed read any of them the same way.
SYNC_KEYS = {"kind", "run_id", "started_at", "ok", "planned", "synced", "failed", "repos", "errors",
             "files_fetched", "files_reused", "bytes_fetched", "bytes_reused"}


def _repo(repo_id: str, ok: bool = True, fetched: int = 0) -> dict:
    return {"repo_id": repo_id, "repo_type": "models", "ok": ok, "bytes_fetched": fetched, "bytes_reused": 1,
            "files_fetched": 1, "files_reused": 0, "error": None if ok else f"{repo_id}: boom",
            "errors": [] if ok else [f"{repo_id}: boom"]}


def test_sync_report_totals_and_verdict():
    report = RunReport.sync("manual__x", [_repo("a/b", fetched=5), _repo("c/d", fetched=7)], planned=2,
                            started_at=datetime(2026, 1, 1, tzinfo=UTC), dag_id="hubmirror_sync")
    body = report.to_dict()
    assert SYNC_KEYS <= body.keys() and body["dag_id"] == "hubmirror_sync"
    assert (body["ok"], body["synced"], body["bytes_fetched"], body["bytes_reused"]) == (True, 2, 12, 2)
    assert body["started_at"] == "2026-01-01T00:00:00.000Z"


def test_a_failed_or_missing_repo_makes_the_run_fail_and_is_named():
    returned = RunReport.sync("r", [_repo("a/b"), _repo("c/d", ok=False)], planned=2).to_dict()
    assert returned["ok"] is False and returned["synced"] == 1
    assert [f["repo_id"] for f in returned["failed"]] == ["c/d"] and returned["errors"] == ["c/d: boom"]
    lost = RunReport.sync("r", [_repo("a/b")], planned=2,
                          failed=[{"repo_id": "e/f", "repo_type": "models", "error": "task died"}]).to_dict()
    assert lost["ok"] is False and [f["repo_id"] for f in lost["failed"]] == ["e/f"] and lost["errors"] == ["task died"]
    stopped = RunReport.sync("r", [_repo("a/b")], planned=3).to_dict()  # the CLI stopped early (refused token)
    assert stopped["ok"] is False
