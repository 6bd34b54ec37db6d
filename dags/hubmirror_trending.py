"""hubmirror_trending: refresh the trending snapshot once a day.

Stores state/trending/<ts>.json + latest.json in the bucket and emits the trending Asset, which
schedules hubmirror_sync, so newly trending repos are mirrored without waiting for its cron.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from hubmirror_common import DAG_ARGS, TRENDING_ASSET, UPSTREAM_TASK_ARGS, refresh_trending


@dag(
    dag_id="hubmirror_trending",
    schedule="@daily",
    max_active_runs=1,
    doc_md=__doc__,
    **DAG_ARGS,
)
def hubmirror_trending():
    @task(**UPSTREAM_TASK_ARGS, outlets=[TRENDING_ASSET], task_id="refresh_trending")
    def refresh(*, outlet_events=None) -> dict:
        return refresh_trending(outlet_events)

    refresh()


hubmirror_trending()
