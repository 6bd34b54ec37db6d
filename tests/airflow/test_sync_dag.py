"""`dag.test()` of hubmirror_sync over the fake hub and a real SeaweedFS bucket.

Settings reach the tasks the production way: Airflow connections (AIRFLOW_CONN_*) read by
plugins/hooks.py and the mirror settings YAML from the Airflow Variable `hubmirror_config`.
Expected contents come from the fake hub itself through huggingface_hub, not from the mirror.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from hubmirror.demohub import corpus
from tests.unit.test_reports import SYNC_KEYS

# (repo id, type, revisions): a repo with branches and a tag, a dataset, a single-segment id.
SELECTION = [(corpus.BRANCHY_MODEL, "model", ["main", "v1.0"]), (corpus.DATASET, "dataset", ["main"]),
             (corpus.SINGLE_SEGMENT_MODEL, "model", ["main"])]
FLAKY = corpus.DATASET  # its first attempt fails (injected 503s outlast mirror_core's own retries)


def service_token(fakehub) -> str:
    token = fakehub.service_token
    assert token, "the fake hub exposes no service token"
    return token


@pytest.fixture
def airflow_settings(monkeypatch, fakehub, bucket_settings):
    """Point the DAG's hooks at the fake hub and this test's bucket through Airflow connections + Variable."""
    s3 = bucket_settings.s3
    monkeypatch.setenv("AIRFLOW_CONN_HUBMIRROR_S3", json.dumps({
        "conn_type": "aws", "login": s3.access_key, "password": s3.secret_key.get_secret_value(),
        "extra": {"endpoint_url": s3.endpoint, "region_name": s3.region, "bucket": s3.bucket}}))
    monkeypatch.setenv("AIRFLOW_CONN_HUBMIRROR_UPSTREAM", json.dumps(
        {"conn_type": "generic", "host": fakehub.url, "password": service_token(fakehub)}))
    config = {
        "selection": {"repos": [{"id": r, "type": t, "revisions": revs} for r, t, revs in SELECTION]},
        "transfer": {"allowed_redirect_hosts": ["127.0.0.1"], "max_retries": 1, "backoff_base": 0.1},
    }
    monkeypatch.setenv("AIRFLOW_VAR_HUBMIRROR_CONFIG", yaml.safe_dump(config))
    fakehub.reset()
    yield bucket_settings
    fakehub.reset()


def task_instances(dag_run) -> dict[tuple[str, int], object]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_run.dag_id,
                                                         TaskInstance.run_id == dag_run.run_id)).all()
        for ti in tis:
            session.expunge(ti)
    return {(ti.task_id, ti.map_index): ti for ti in tis}


def run_report(store, dag_run) -> dict:
    """The run-level report `report` wrote for this DAG run (found by its run id)."""
    reports = [o.key for o in store.list("state/runs/") if dag_run.dag_id in o.key]
    matching = [r for r in map(store.get_json, reports) if r.get("dag_run_id") == dag_run.run_id]
    assert len(matching) == 1, reports
    return matching[0]


def test_sync_mirrors_the_selection_and_retries_a_flaky_repo(bag, airflow_settings, fakehub, airflow_db) -> None:
    from huggingface_hub import HfApi

    from mirror_core.layout import RepoRef, commit_key, refs_key
    from mirror_core.manifest import CommitManifest, Refs
    from mirror_core.store import Store
    from mirror_core.verify import verify

    fakehub.set_faults({"action": "error", "status": 503, "kind": "api", "path": FLAKY, "count": 2})
    dag_run = bag.dags["hubmirror_sync"].test()
    assert dag_run.state == "success"

    tis = task_instances(dag_run)
    sync = {ti.rendered_map_index: ti for (task_id, _), ti in tis.items() if task_id == "sync_repo"}
    assert set(sync) == {f"{t}/{r}" for r, t, _ in SELECTION}
    tries = {label: ti.try_number for label, ti in sync.items()}
    assert tries == {label: (2 if label.endswith(FLAKY) else 1) for label in sync}, tries
    assert all(ti.state == "success" for ti in tis.values())

    # The bucket now holds exactly what the upstream has, verified, for every wanted revision.
    settings = airflow_settings
    store = Store(settings.s3)
    api = HfApi(endpoint=fakehub.url, token=service_token(fakehub))
    for repo_id, repo_type, revisions in SELECTION:
        repo = RepoRef.parse(repo_id, repo_type)
        refs = Refs.model_validate(store.get_json(refs_key(repo)))
        for revision in revisions:
            upstream_sha = api.repo_info(repo_id, repo_type=repo_type, revision=revision).sha
            assert refs.resolve(revision) == upstream_sha, (repo_id, revision)
            upstream_files = set(api.list_repo_files(repo_id, repo_type=repo_type, revision=upstream_sha))
            mirrored = CommitManifest.model_validate(store.get_json(commit_key(repo, upstream_sha)))
            assert {f.path for f in mirrored.files} == upstream_files, (repo_id, revision)
    report = verify(settings, store, write_report=False)
    assert report.ok, report.to_dict()
    assert report.to_dict()["missing"] == 0 and report.to_dict()["corrupt"] == 0

    summary = run_report(store, dag_run)
    assert summary["planned"] == 3 and summary["synced"] == 3 and summary["failed"] == []
    assert SYNC_KEYS <= summary.keys() and summary["ok"] is True and len(summary["repos"]) == 3  # the CLI's shape
    assert store.get_json("state/catalog/latest.json"), "the catalog was not rebuilt"

    # The weekly maintenance DAGs run on this bucket too (dry runs: nothing to repair or delete).
    verify_run = bag.dags["hubmirror_verify"].test(run_conf={"sample": 0, "dry_run": True})
    assert verify_run.state == "success"
    blobs_before = sorted(o.key for o in store.list("blobs/"))
    gc_run = bag.dags["hubmirror_gc"].test(run_conf={"dry_run": False, "grace_hours": 0})
    assert gc_run.state == "success"
    assert sorted(o.key for o in store.list("blobs/")) == blobs_before  # every body is still referenced
    gc_reports = [o.key for o in store.list("state/runs/") if "hubmirror_gc" in o.key]
    assert len(gc_reports) == 1 and store.get_json(gc_reports[0])["retention"]["ok"]  # one report per cycle


def test_refused_token_fails_fast_and_the_run_is_reported_failed(bag, airflow_settings, fakehub, monkeypatch,
                                                                 airflow_db) -> None:
    from mirror_core.store import Store

    monkeypatch.setenv("AIRFLOW_CONN_HUBMIRROR_UPSTREAM", json.dumps(
        {"conn_type": "generic", "host": fakehub.url, "password": "hf_not_a_valid_token"}))
    dag_run = bag.dags["hubmirror_sync"].test()
    assert dag_run.state == "failed"

    tis = task_instances(dag_run)
    sync = [ti for (task_id, _), ti in tis.items() if task_id == "sync_repo"]
    assert len(sync) == 3
    assert all(ti.state == "failed" and ti.try_number == 1 for ti in sync), [(ti.state, ti.try_number) for ti in sync]
    assert tis[("report", -1)].state == "failed"  # it fails the run after writing the report:

    summary = run_report(Store(airflow_settings.s3), dag_run)
    assert summary["synced"] == 0
    assert {f["repo_id"] for f in summary["failed"]} == {r for r, _, _ in SELECTION}
    assert all("token" in f["error"].lower() or "401" in f["error"] for f in summary["failed"]), summary["failed"]


def test_selection_larger_than_max_map_length_is_batched_and_names_each_failure(
        bag, airflow_settings, fakehub, monkeypatch, airflow_db) -> None:
    """4 repos with [core] max_map_length=2: two mapped tasks of two repos; a repo missing upstream fails
    its batch, its batch-mate is still mirrored, and the report names exactly the missing repo."""
    from mirror_core.store import Store

    missing = "nobody/not-on-the-hub"
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")
    config = yaml.safe_load(os.environ["AIRFLOW_VAR_HUBMIRROR_CONFIG"])
    config["selection"]["repos"].append({"id": missing, "type": "model", "revisions": ["main"]})
    monkeypatch.setenv("AIRFLOW_VAR_HUBMIRROR_CONFIG", yaml.safe_dump(config))

    dag_run = bag.dags["hubmirror_sync"].test()
    assert dag_run.state == "failed"
    tis = task_instances(dag_run)
    sync = sorted((ti for (task_id, _), ti in tis.items() if task_id == "sync_repo"), key=lambda ti: ti.map_index)
    assert [ti.map_index for ti in sync] == [0, 1]
    assert sorted(ti.state for ti in sync) == ["failed", "success"]
    assert any(ti.rendered_map_index.endswith("+1 more") for ti in sync), [ti.rendered_map_index for ti in sync]

    summary = run_report(Store(airflow_settings.s3), dag_run)
    assert summary["planned"] == 4 and summary["synced"] == 3
    assert [(f["repo_id"], f["map_index"]) for f in summary["failed"]] == [(missing, 1)]
    assert missing in summary["failed"][0]["error"]
