"""hubmirror_verify: weekly re-hash of stored bodies against their manifests, with repair.

Params: `sample` (how many bodies; 0 = all, rotating through the bucket across runs), `dry_run`
(report only; no re-fetch) and `sha256` (only these bodies; serve sends the ones whose proxied read
failed its hash). The run fails when problems remain, after the report is written.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task
from hubmirror_common import DAG_ARGS, UPSTREAM_POOL, verify_bucket


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
        return verify_bucket(params, get_current_context())

    verify()


hubmirror_verify()
