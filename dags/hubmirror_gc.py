"""hubmirror_gc: weekly retention (keep the last K commits per branch + tags) then mark-and-sweep GC.

Params: `dry_run` (list what would go and the bytes reclaimed; delete nothing) and `grace_hours`
(a body younger than this is never deleted, so an in-flight sync keeps what it just uploaded).
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task
from hubmirror_common import DAG_ARGS, retain_and_collect


@dag(
    dag_id="hubmirror_gc",
    schedule="0 4 * * 0",
    max_active_runs=1,
    doc_md=__doc__,
    **DAG_ARGS,
    params={
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Only report what retention and GC would delete."),
        "grace_hours": Param(24, type="integer", minimum=0, title="Grace period (hours)",
                             description="Unreferenced bodies younger than this are kept."),
    },
)
def hubmirror_gc():
    @task(task_id="retain_and_collect")
    def gc_cycle(params: dict | None = None) -> dict:
        """Retention, then mark-and-sweep; one report for the cycle (none for a dry run: see the XCom)."""
        return retain_and_collect(params, get_current_context())

    gc_cycle()


hubmirror_gc()
