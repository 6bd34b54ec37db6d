"""hubmirror_sync: mirror the whole selection (configured repos + latest trending snapshot).

Runs every HUBMIRROR_SYNC_SCHEDULE (default every 6 h) and whenever hubmirror_trending publishes a
new snapshot. Shape: plan -> one mapped `sync_repo` per repo (pool hf_upstream, exponential backoff,
fail-fast on auth errors) -> `report`: run report + catalog (even when some repos failed), then it fails
if any repo failed, so the run is red in the grid. It is one task on purpose: "clear failed tasks"
then re-runs the failed repos *and* the report, which rebuilds the catalog with them.

Mapping is one task instance per repo (not per shard) so the UI shows and retries each repo on its
own. Airflow refuses to map more than `[core] max_map_length` (default 1024) items, so `plan` fails
with a clear message when the selection is larger: raise AIRFLOW__CORE__MAX_MAP_LENGTH deliberately or
narrow `selection.trending.*.top`.
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
    SYNC_SCHEDULE,
    TRENDING_ASSET,
    UPSTREAM_TASK_ARGS,
    report_and_catalog,
    settings_and_store,
    sync_one,
)

if SYNC_SCHEDULE.strip().lower() in ("", "none", "off"):
    SCHEDULE: Any = [TRENDING_ASSET]
else:
    SCHEDULE = AssetOrTimeSchedule(timetable=CronTriggerTimetable(SYNC_SCHEDULE, timezone="UTC"),
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
    def plan() -> list[dict]:
        """The repos to sync: configured selection + latest trending snapshot, deduplicated."""
        from airflow.sdk import conf
        from airflow.sdk.exceptions import AirflowFailException

        from mirror_core.selection import plan as plan_selection

        settings, store = settings_and_store()
        plans = [p.to_dict() for p in plan_selection(settings, store)]
        limit = conf.getint("core", "max_map_length")
        if len(plans) > limit:
            raise AirflowFailException(
                f"the selection has {len(plans)} repos, more than [core] max_map_length={limit} mapped tasks: "
                "narrow selection.trending.*.top or raise AIRFLOW__CORE__MAX_MAP_LENGTH"
            )
        print(f"{len(plans)} repos selected: {', '.join(p['repo_id'] for p in plans)}")
        return plans

    @task(**UPSTREAM_TASK_ARGS, execution_timeout=timedelta(hours=6), map_index_template="{{ repo_label }}")
    def sync_repo(repo_plan: dict, params: dict | None = None) -> dict:
        """Mirror one repo; a failed result fails the task so Airflow retries it."""
        context = get_current_context()
        context["repo_label"] = f"{repo_plan['repo_type'].rstrip('s')}/{repo_plan['repo_id']}"
        return sync_one(repo_plan, force=bool(params["force"]), context=context)

    @task(trigger_rule=TriggerRule.ALL_DONE, outlets=[CATALOG_ASSET])
    def report(plans: list[dict]) -> dict:
        """Write the run report and rebuild the catalog whatever happened, then fail if any repo failed."""
        return report_and_catalog(plans, get_current_context(), mapped=True)

    plans = plan()
    sync_repo.expand(repo_plan=plans) >> report(plans)


hubmirror_sync()
