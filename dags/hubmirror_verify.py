"""hubmirror_verify: weekly re-hash of stored bodies against their manifests, with repair.

Params: `sample` (how many bodies; 0 = all, rotating through the bucket across runs), `dry_run`
(report only; no re-fetch) and `sha256` (only these bodies; serve sends the ones whose proxied read
failed its hash). The run fails when problems remain, after the report is written.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task
from hubmirror_common import DAG_ARGS, UPSTREAM_POOL, run_id_of, settings_and_store


@dag(
    dag_id="hubmirror_verify",
    schedule="0 3 * * 0",
    max_active_runs=1,
    doc_md=__doc__,
    **DAG_ARGS,
    params={
        "sample": Param(2000, type="integer", minimum=0, title="Sample size",
                        description="Bodies to re-hash this run (0 = all of them)."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Only report; do not re-fetch missing or corrupt bodies."),
        "sha256": Param([], type="array", items={"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        title="Only these bodies",
                        description="sha256 of bodies to re-hash (and repair); empty = use the sample size."),
    },
)
def hubmirror_verify():
    @task(pool=UPSTREAM_POOL, execution_timeout=timedelta(hours=12))
    def verify(params: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from mirror_core.verify import verify as verify_bucket

        settings, store = settings_and_store()
        report = verify_bucket(settings, store, sample=params["sample"] or None, repair=not params["dry_run"],
                               run_id=run_id_of(get_current_context()), bodies=params["sha256"] or None)
        summary = report.to_dict()
        print(f"verify report: {report.report_key}: {summary.get('missing')} missing, "
              f"{summary.get('corrupt')} corrupt, {report.repaired} repaired")
        if not report.ok:
            raise AirflowFailException(f"verify found problems it did not repair; see {report.report_key}")
        return {"report_key": report.report_key, "ok": report.ok, "repaired": report.repaired}

    verify()


hubmirror_verify()
