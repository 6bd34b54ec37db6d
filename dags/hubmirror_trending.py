"""hubmirror_trending: refresh the trending snapshot once a day.

Stores state/trending/<ts>.json + latest.json in the bucket and emits the trending Asset, which
schedules hubmirror_sync, so newly trending repos are mirrored without waiting for its cron.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from hubmirror_common import DAG_ARGS, TRENDING_ASSET, UPSTREAM_TASK_ARGS, settings_and_store


@dag(
    dag_id="hubmirror_trending",
    schedule="@daily",
    max_active_runs=1,
    doc_md=__doc__,
    **DAG_ARGS,
)
def hubmirror_trending():
    @task(**UPSTREAM_TASK_ARGS, outlets=[TRENDING_ASSET])
    def refresh_trending(*, outlet_events=None) -> dict:
        from mirror_core.trending import refresh_trending as refresh

        settings, store = settings_and_store()
        snapshot = refresh(settings, store)
        repos = [f"{p.repo_type}/{p.repo_id}" for p in snapshot.repos]
        outlet_events[TRENDING_ASSET].extra = {"repos": len(repos)}
        print(f"trending snapshot: {len(repos)} repos selected: {', '.join(repos)}")
        return {"repos": repos}

    refresh_trending()


hubmirror_trending()
