"""hubmirror_sync_repo: mirror one repo on demand (UI trigger form, REST API, serve's on-demand requests).

Trigger with conf {"repo_id": "org/name", "repo_type": "model", "revision": "main", "force": false}.
Same retry manners as hubmirror_sync (pool hf_upstream, exponential backoff, fail fast on auth errors);
then `report` writes the run report and a fresh catalog, and fails (so does the run) if the repo failed;
clearing the failed tasks re-runs the sync and the report together.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task
from hubmirror_common import (
    CATALOG_ASSET,
    DAG_ARGS,
    UPSTREAM_TASK_ARGS,
    report_and_catalog,
    request_plan,
    sync_one,
)


@dag(
    dag_id="hubmirror_sync_repo",
    schedule=None,
    max_active_runs=4,
    doc_md=__doc__,
    **DAG_ARGS,
    params={
        "repo_id": Param(type="string", minLength=1, maxLength=200, pattern=r"^[\w.-]+(/[\w.-]+)?$",
                         title="Repo id", description="Upstream repo id, e.g. openai-community/gpt2"),
        "repo_type": Param("model", type="string", enum=["model", "dataset", "space"], title="Repo type"),
        "revision": Param("main", type="string", minLength=1, title="Revision",
                          description="Branch, tag, commit sha or glob of branches/tags (e.g. v1.*)"),
        "force": Param(False, type="boolean", title="Force",
                       description="Re-list and re-check even if the mirrored ref is already current."),
    },
)
def hubmirror_sync_repo():
    @task
    def plan(params: dict | None = None) -> list[dict]:
        """Validate the form into a one-repo plan (configured allow/ignore patterns apply if listed)."""
        return [request_plan(params["repo_id"], params["repo_type"], params["revision"])]

    @task(**UPSTREAM_TASK_ARGS, execution_timeout=timedelta(hours=12))
    def sync_repo(plans: list[dict], params: dict | None = None) -> dict:
        return sync_one(plans[0], force=bool(params["force"]), context=get_current_context())

    @task(trigger_rule=TriggerRule.ALL_DONE, outlets=[CATALOG_ASSET])
    def report(plans: list[dict]) -> dict:
        return report_and_catalog(plans, get_current_context(), mapped=False)

    plans = plan()
    sync_repo(plans) >> report(plans)


hubmirror_sync_repo()
