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
    def apply_retention(params: dict | None = None) -> dict:
        from mirror_core.retention import apply_retention as retention

        settings, store = settings_and_store()
        report = retention(settings, store, dry_run=params["dry_run"])
        print(f"retention: {len(report.removed)} manifests {'would go' if params['dry_run'] else 'removed'}")
        return {"removed": report.removed, "problems": report.problems, "kept": report.kept}

    @task
    def collect_garbage(retention: dict, params: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from mirror_core.gc import collect_garbage as gc
        from mirror_core.reports import write_run_report

        settings, store = settings_and_store()
        context = get_current_context()
        report = gc(settings, store, dry_run=params["dry_run"], grace_seconds=params["grace_hours"] * 3600,
                    assume_removed=frozenset(retention["removed"]) if params["dry_run"] else frozenset(),
                    write_report=False)  # one report for the whole cycle, written below
        summary = {"retention": retention, "gc": report.to_dict()}
        key = write_run_report(store, "gc", run_id_of(context), summary)
        print(f"gc report: {key}; {report.deleted} bodies, {report.bytes_reclaimed} bytes "
              f"{'would be reclaimed' if params['dry_run'] else 'reclaimed'}")
        if retention["problems"] or not report.ok:
            raise AirflowFailException(f"retention/gc found problems (nothing unsafe was deleted); see {key}")
        return {"report_key": key, "deleted": report.deleted, "bytes_reclaimed": report.bytes_reclaimed}

    collect_garbage(apply_retention())


hubmirror_gc()
