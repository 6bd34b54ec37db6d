"""hubmirror_sync: mirror the whole selection (configured repos + latest trending snapshot).

Runs every HUBMIRROR_SYNC_SCHEDULE (default every 6 h) and whenever hubmirror_trending publishes a
new snapshot. Shape: plan -> one mapped `sync_repo` per repo (pool hf_upstream, exponential backoff,
fail-fast on auth errors) -> `report`: run report + catalog (even when some repos failed), then it fails
if any repo failed, so the run is red in the grid. It is one task on purpose: "clear failed tasks"
then re-runs the failed repos *and* the report, which rebuilds the catalog with them.

Mapping is one task instance per repo so the UI shows and retries each repo on its own. Airflow
refuses to map more than `[core] max_map_length` (default 1024) items, so a larger selection is mapped
over batches instead (as few repos per task as fit, e.g. 2 for 2048 repos): each task syncs its repos
one after the other, keeps going past a failed one, and the run report names every failed repo.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import (
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    TriggerRule,
    dag,
    get_current_context,
    task,
)
from hubmirror_common import (
    CATALOG_ASSET,
    DAG_ARGS,
    SYNC_CRON,
    TRENDING_ASSET,
    UPSTREAM_TASK_ARGS,
    plan_batches,
    report_and_catalog,
    sync_batch,
)

if SYNC_CRON is None:
    SCHEDULE: Any = [TRENDING_ASSET]
else:
    SCHEDULE = AssetOrTimeSchedule(timetable=CronTriggerTimetable(SYNC_CRON, timezone="UTC"),
                                   assets=[TRENDING_ASSET])


@dag(
    dag_id="hubmirror_sync",
    schedule=SCHEDULE,
    max_active_runs=1,
    doc_md=__doc__,
    **DAG_ARGS,
    params={
        "force": Param(False, type="boolean", title="Force",
                       description="Re-list and re-check every repo even if its ref is already current."),
    },
)
def hubmirror_sync():
    @task
    def plan() -> list[list[dict]]:
        """The repos to sync, in batches (one repo each unless there are more than Airflow maps)."""
        return plan_batches()

    @task(**UPSTREAM_TASK_ARGS, execution_timeout=timedelta(hours=6), map_index_template="{{ repo_label }}")
    def sync_repo(repo_batch: list[dict], params: dict | None = None) -> list[dict]:
        """Mirror a batch of repos (usually one); a failed repo fails the task so Airflow retries it."""
        return sync_batch(repo_batch, force=bool(params["force"]), context=get_current_context())

    @task(trigger_rule=TriggerRule.ALL_DONE, outlets=[CATALOG_ASSET])
    def report(batches: list[list[dict]]) -> dict:
        """Write the run report and rebuild the catalog whatever happened, then fail if any repo failed."""
        return report_and_catalog(batches, get_current_context(), mapped=True)

    batches = plan()
    sync_repo.expand(repo_batch=batches) >> report(batches)


hubmirror_sync()
