"""hubmirror_gc: weekly retention (keep the last K commits per branch + tags) then mark-and-sweep GC.

Params: `dry_run` (list what would go and the bytes reclaimed; delete nothing) and `grace_hours`
(a body younger than this is never deleted, so an in-flight sync keeps what it just uploaded).
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task
from hubmirror_common import DAG_ARGS, run_id_of, settings_and_store


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
    @task
    def retain_and_collect(params: dict | None = None) -> dict:
        """Retention, then mark-and-sweep; one report for the cycle (none for a dry run: see the XCom)."""
        from airflow.sdk.exceptions import AirflowFailException

        from mirror_core.gc import retain_and_collect as cycle

        settings, store = settings_and_store()
        report = cycle(settings, store, dry_run=params["dry_run"], grace_seconds=params["grace_hours"] * 3600,
                       run_id=run_id_of(get_current_context()))
        print(f"gc: {report.deleted} bodies, {report.bytes_reclaimed} bytes "
              f"{'would be reclaimed' if params['dry_run'] else 'reclaimed'}; report {report.report_key}")
        if not report.ok:
            raise AirflowFailException(f"retention/gc found problems (nothing unsafe was deleted): {report.problems}"
                                       f"; see {report.report_key or 'the XCom of this task'}")
        return report.to_dict()

    retain_and_collect()


hubmirror_gc()
