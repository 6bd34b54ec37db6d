"""End to end through real Airflow: the four components on 127.0.0.1, driven by REST API v2 only.

Trigger hubmirror_sync_repo, poll it to success; make a sync fail (the fake hub answers 503 past every
retry), see the run fail, clear the failed task through the API and see it succeed; then download
the repos with huggingface_hub through serve and compare with the fake hub's own bytes. Every
process started here is stopped by its PID and checked to be gone.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml

from hubmirror.demohub import corpus
from hubmirror.embedded_s3 import free_port
from hubmirror.stack import AirflowStack, Proc, spawn, stop_procs, wait_http

GOOD = corpus.BRANCHY_MODEL
FLAKY = corpus.SINGLE_SEGMENT_MODEL
DAG = "hubmirror_sync_repo"


class Api:
    def __init__(self, stack: AirflowStack) -> None:
        self.client = httpx.Client(base_url=stack.url, timeout=30,
                                   headers={"Authorization": f"Bearer {stack.token()}"})

    def __call__(self, method: str, path: str, expect: int | tuple[int, ...] = (200, 201), **kw) -> dict:
        r = self.client.request(method, path, **kw)
        assert r.status_code in ((expect,) if isinstance(expect, int) else expect), (method, path, r.text)
        return r.json() if r.content else {}

    def wait_run(self, run_id: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}")["state"]
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise AssertionError(f"run {run_id} not finished within {timeout}s")

    def tasks(self, run_id: str) -> dict[str, dict]:
        body = self("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances")
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def trigger(self, repo_id: str) -> str:
        body = self("POST", f"/api/v2/dags/{DAG}/dagRuns",
                    json={"logical_date": None, "conf": {"repo_id": repo_id, "repo_type": "model"}})
        return body["dag_run_id"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, s3_server, fakehub):
    """Airflow (4 components) + serve on 127.0.0.1 over a fresh bucket; everything stopped afterwards."""
    import uuid

    from mirror_core.store import Store
    from tests.conftest import make_settings

    settings = make_settings(s3_server, f"e2e-{uuid.uuid4().hex[:12]}")
    Store(settings.s3).ensure_bucket()
    s3 = settings.s3
    config = {"transfer": {"allowed_redirect_hosts": ["127.0.0.1"], "max_retries": 1, "backoff_base": 0.1}}
    home = tmp_path_factory.mktemp("airflow-e2e")
    serve_port = free_port()
    airflow = AirflowStack(home, free_port(), paused_at_creation=True, parallelism=4, extra_env={
        # The bucket as an env connection; the upstream connection is created through the REST API below.
        "AIRFLOW_CONN_HUBMIRROR_S3": json.dumps({
            "conn_type": "aws", "login": s3.access_key, "password": s3.secret_key.get_secret_value(),
            "extra": {"endpoint_url": s3.endpoint, "region_name": s3.region, "bucket": s3.bucket}}),
        "AIRFLOW_VAR_HUBMIRROR_CONFIG": yaml.safe_dump(config),
        "HUBMIRROR_UPSTREAM_RETRIES": "1",
        "HUBMIRROR_RETRY_DELAY_SECONDS": "1",
        "HUBMIRROR_MAX_RETRY_DELAY_SECONDS": "2",
        "HUBMIRROR_SERVE_URL": f"http://127.0.0.1:{serve_port}",
    })
    serve_env = {**airflow.env(), "HUBMIRROR_S3_ENDPOINT": s3.endpoint, "HUBMIRROR_S3_ACCESS_KEY": s3.access_key,
                 "HUBMIRROR_S3_SECRET_KEY": s3.secret_key.get_secret_value(), "HUBMIRROR_S3_BUCKET": s3.bucket,
                 "HUBMIRROR_S3_REGION": s3.region, "HUBMIRROR_SERVE_REFS_TTL": "0", "HUBMIRROR_SERVE_MISSING_TTL": "0"}
    procs: list[Proc] = []
    try:
        airflow.start()
        procs.append(spawn("serve", [sys.executable, "-m", "hubmirror.cli", "serve", "--host", "127.0.0.1",
                                     "--port", str(serve_port)], serve_env, home / "logs"))
        wait_http(f"http://127.0.0.1:{serve_port}/healthz", procs[0], 60)
        yield airflow, f"http://127.0.0.1:{serve_port}", settings
    finally:
        stop_procs(procs)
        airflow.stop()
        everything = [*procs, *airflow.procs]
        assert everything and not [p.name for p in everything if p.alive()], "a started process survived"
        for p in everything:
            assert not Path(f"/proc/{p.pid}").exists() or "zombie" in Path(f"/proc/{p.pid}/status").read_text()


def test_trigger_fail_clear_and_download_through_serve(stack, fakehub, tmp_path) -> None:
    from huggingface_hub import HfApi, snapshot_download

    airflow, serve_url, _ = stack
    api = Api(airflow)
    token = fakehub.service_token

    # Connections can be managed through the API too: the upstream one lives in Airflow's DB.
    api("POST", "/api/v2/connections", json={"connection_id": "hubmirror_upstream", "conn_type": "generic",
                                             "host": fakehub.url, "password": token})
    deadline = time.monotonic() + 120
    while api.client.get(f"/api/v2/dags/{DAG}").status_code != 200:  # the dag-processor's first parse
        assert time.monotonic() < deadline, "hubmirror_sync_repo never appeared"
        time.sleep(1)
    api("PATCH", f"/api/v2/dags/{DAG}", json={"is_paused": False})
    api("POST", f"/api/v2/dags/{DAG}/dagRuns", expect=400,
        json={"logical_date": None, "conf": {"repo_id": GOOD, "repo_type": "checkpoint"}})

    # 1. A plain trigger, polled to success.
    fakehub.reset()
    run = api.trigger(GOOD)
    assert api.wait_run(run) == "success"
    tasks = api.tasks(run)
    assert {t: ti["state"] for t, ti in tasks.items()} == dict.fromkeys(("plan", "sync_repo", "report"), "success")

    # 2. The upstream fails this repo on every try: the run ends failed after the retry.
    fakehub.set_faults({"action": "error", "status": 503, "kind": "api", "path": FLAKY})
    run = api.trigger(FLAKY)
    assert api.wait_run(run) == "failed"
    tasks = api.tasks(run)
    assert tasks["sync_repo"]["state"] == "failed" and tasks["sync_repo"]["try_number"] == 2  # 1 retry
    assert tasks["report"]["state"] == "failed" and tasks["report"]["try_number"] == 1  # report written, run red

    # 3. The upstream recovers; clear the failed task (and its downstream) through the API.
    fakehub.reset()
    cleared = api("POST", f"/api/v2/dags/{DAG}/clearTaskInstances",
                  json={"dag_run_id": run, "only_failed": True, "include_downstream": True, "dry_run": False})
    assert {ti["task_id"] for ti in cleared["task_instances"]} == {"sync_repo", "report"}
    assert api.wait_run(run) == "success", {t: (ti["state"], ti["try_number"]) for t, ti in api.tasks(run).items()}
    tasks = api.tasks(run)
    assert tasks["sync_repo"]["state"] == "success" and tasks["sync_repo"]["try_number"] == 3

    # 4. Both repos download through serve, byte for byte what the upstream has.
    upstream = HfApi(endpoint=fakehub.url, token=token)
    for repo_id in (GOOD, FLAKY):
        local = Path(snapshot_download(repo_id, endpoint=serve_url, cache_dir=tmp_path / "hf-cache", token=False))
        files = upstream.list_repo_files(repo_id)
        assert sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()) == sorted(files)
        for path in files:
            expected = Path(upstream.hf_hub_download(repo_id, path, cache_dir=tmp_path / "upstream-cache"))
            assert (local / path).read_bytes() == expected.read_bytes(), (repo_id, path)

    # 5. The Mirror page (behind Airflow's auth) shows both repos as synced, with links.
    assert httpx.get(f"{airflow.url}/hubmirror/api/repos").status_code == 401
    rows = {r["repo_id"]: r for r in api("GET", "/hubmirror/api/repos")["repos"]}
    for repo_id in (GOOD, FLAKY):
        assert rows[repo_id]["state"] == "success" and rows[repo_id]["size"] > 0, rows[repo_id]
        assert rows[repo_id]["airflow_url"].startswith(f"/dags/{DAG}/runs/")
        assert rows[repo_id]["serve_url"] == f"{serve_url}/{repo_id}"
    # In the UI the page is an iframe: the browser sends the login cookie, not a Bearer header.
    assert httpx.get(f"{airflow.url}/hubmirror/ui").status_code == 401
    page = httpx.get(f"{airflow.url}/hubmirror/ui", cookies={"_token": airflow.token()})
    assert page.status_code == 200 and GOOD in page.text and FLAKY in page.text
