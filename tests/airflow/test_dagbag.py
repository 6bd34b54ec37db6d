"""The DAG files parse without errors and declare what operators rely on (no DB needed)."""

from __future__ import annotations

from datetime import timedelta

import pytest

EXPECTED_TASKS = {
    "hubmirror_trending": {"refresh_trending"},
    "hubmirror_sync": {"plan", "sync_repo", "report"},
    "hubmirror_sync_repo": {"plan", "sync_repo", "report"},
    "hubmirror_verify": {"verify"},
    "hubmirror_gc": {"retain_and_collect"},
}


def test_no_import_errors_and_expected_dags(bag) -> None:
    assert bag.import_errors == {}
    assert set(bag.dags) == set(EXPECTED_TASKS)
    for dag_id, tasks in EXPECTED_TASKS.items():
        assert set(bag.dags[dag_id].task_dict) == tasks, dag_id


def test_upstream_tasks_use_pool_backoff_and_fail_fast_policy(bag) -> None:
    from mirror_core.errors import GatedRepoError, UpstreamAuthError, UpstreamError

    for dag_id in ("hubmirror_sync", "hubmirror_sync_repo", "hubmirror_trending"):
        task_id = "refresh_trending" if dag_id == "hubmirror_trending" else "sync_repo"
        t = bag.dags[dag_id].get_task(task_id)
        assert t.pool == "hf_upstream", dag_id
        assert t.retries >= 3 and t.retry_exponential_backoff == 2.0
        assert t.retry_delay == timedelta(seconds=1)  # shortened for tests by tests/airflow/conftest.py
        if task_id == "sync_repo":
            assert t.execution_timeout is not None and t.execution_timeout >= timedelta(hours=1)
        policy = t.retry_policy
        for exc, action in ((UpstreamAuthError("401"), "fail"), (GatedRepoError("gated"), "fail"),
                            (UpstreamError("503"), "default"), (ConnectionError("reset"), "default")):
            assert policy.evaluate(exc, try_number=1, max_tries=t.retries + 1).action.value == action, exc


def test_sync_is_mapped_per_repo_and_reports_even_on_failure(bag) -> None:
    d = bag.dags["hubmirror_sync"]
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(d.get_task("sync_repo"), MappedOperator)
    report = d.get_task("report")
    assert report.trigger_rule == "all_done" and report.upstream_task_ids == {"plan", "sync_repo"}
    assert report.downstream_task_ids == set()  # a leaf: when it fails (a repo failed), the run fails


def test_schedules_and_assets(bag) -> None:
    dags = bag.dags
    assert dags["hubmirror_trending"].timetable.expression == "0 0 * * *"  # @daily
    trending_out = dags["hubmirror_trending"].get_task("refresh_trending").outlets
    assert [a.uri for a in trending_out] == ["hubmirror://state/trending/latest.json"]
    sync_tt = dags["hubmirror_sync"].timetable
    assert type(sync_tt).__name__ == "AssetOrTimeSchedule"  # cron OR a new trending snapshot
    assert sync_tt.timetable.expression == "0 */6 * * *"
    assert {a.uri for a in sync_tt.asset_condition.objects} == {"hubmirror://state/trending/latest.json"}
    assert type(dags["hubmirror_sync_repo"].timetable).__name__ == "NullTimetable"  # manual / API only
    for dag_id in ("hubmirror_verify", "hubmirror_gc"):
        cron = dags[dag_id].timetable.expression
        assert cron.endswith("* * 0"), (dag_id, cron)  # weekly, on Sundays
    for d in dags.values():
        assert d.catchup is False


def test_params_make_trigger_forms(bag) -> None:
    params = bag.dags["hubmirror_sync_repo"].params
    assert set(params) == {"repo_id", "repo_type", "revision", "force"}
    assert params.get_param("repo_type").schema["enum"] == ["model", "dataset", "space"]
    assert params.get_param("force").schema["type"] == "boolean"
    assert params.get_param("repo_id").description and params.get_param("revision").value == "main"
    assert set(bag.dags["hubmirror_verify"].params) == {"sample", "dry_run", "sha256"}
    assert set(bag.dags["hubmirror_gc"].params) == {"dry_run", "grace_hours"}


def test_bad_trigger_conf_is_refused_with_the_param_named(bag) -> None:
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(bag.dags["hubmirror_sync_repo"].params)
    params.update({"repo_id": "org/x", "repo_type": "dataset"})
    assert params.validate()["repo_type"] == "dataset"
    with pytest.raises(ParamValidationError, match="repo_type: 'checkpoint' is not one of"):
        params.update({"repo_type": "checkpoint"})
    with pytest.raises(ParamValidationError, match="repo_id"):
        params.update({"repo_id": "not a repo id!"})


def test_serve_on_demand_confs_are_valid_trigger_confs(bag) -> None:
    """serve triggers these DAGs through the REST API; a conf their Params refuse would be lost."""
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    from mirror_core.layout import RepoRef
    from serve.ondemand import SYNC_DAG, VERIFY_DAG, repair_conf, sync_conf

    for dag_id, conf in ((SYNC_DAG, sync_conf(RepoRef.parse("org/ds", "dataset"))),
                         (VERIFY_DAG, repair_conf(["ab" * 32]))):
        params = ParamsDict(bag.dags[dag_id].params)
        params.update(conf)
        assert {k: params.validate()[k] for k in conf} == conf
    params = ParamsDict(bag.dags[VERIFY_DAG].params)
    with pytest.raises(ParamValidationError, match="sha256"):
        params.update({"sha256": ["not-a-sha"]})


def test_plugin_registers_view_and_creates_the_upstream_pool_on_job_start(airflow_db) -> None:
    """A task in a missing pool hangs forever, so any Airflow job start (re)creates it via our listener."""
    from airflow.jobs.job import Job
    from airflow.models.pool import Pool
    from airflow.plugins_manager import get_plugin_info
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    info = {p["name"]: p for p in get_plugin_info()}["hubmirror"]
    assert info["listeners"] == ["plugins.listeners"]
    assert info["fastapi_apps"][0]["url_prefix"] == "/hubmirror"
    assert info["external_views"][0]["name"] == "Mirror"

    with create_session() as session:
        session.execute(delete(Pool).where(Pool.pool == "hf_upstream"))
    assert Pool.get_pool("hf_upstream") is None
    Job()  # what the scheduler, dag-processor and triggerer construct at start-up
    pool = Pool.get_pool("hf_upstream")
    assert pool is not None and pool.slots == 4
    with create_session() as session:
        session.get(Pool, pool.id).slots = 7  # an operator's tuning survives the next start
    Job()
    assert Pool.get_pool("hf_upstream").slots == 7


def test_local_stack_gets_the_pool_from_the_plugin_before_the_scheduler_runs(tmp_path) -> None:
    """`hubmirror up` does not create the pool itself: in the stack's own environment (fresh home, `db migrate`
    as `start` runs it) the Job a scheduler builds before its loop queues any task finds the plugin through its
    entry point, and the listener creates `hf_upstream` with HUBMIRROR_UPSTREAM_POOL_SLOTS slots."""
    import subprocess
    import sys

    from hubmirror.embedded_s3 import free_port
    from hubmirror.stack import AirflowStack, airflow_binary

    stack = AirflowStack(tmp_path / "airflow", free_port(), extra_env={"HUBMIRROR_UPSTREAM_POOL_SLOTS": "3"})
    stack.home.mkdir()
    env = stack.env()
    subprocess.run([airflow_binary(), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    probe = ("from airflow.jobs.job import Job\nfrom airflow.models.pool import Pool\n"
             "before = Pool.get_pool('hf_upstream')\nJob()\nafter = Pool.get_pool('hf_upstream')\n"
             "print(before is None, after and after.slots, after and after.description)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True,
                         timeout=120).stdout.strip().splitlines()[-1]
    assert out == "True 3 hubmirror: concurrent requests to the upstream hub (one slot = one repo being synced)"
