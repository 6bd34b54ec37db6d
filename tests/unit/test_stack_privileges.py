"""`hubmirror up` gives serve least privilege (issue 10, item 8): read-only S3 keys, no upstream token, no writer
keys, no config file, and an Airflow user whose role may trigger DAG runs but not read connections or variables."""

from __future__ import annotations

import json
import stat

from hubmirror.embedded_s3 import EmbeddedS3
from hubmirror.stack import ADMIN_USER, SERVE_ROLE, SERVE_USER, AirflowStack, _ensure_passwords, serve_environment

SECRETS = {
    "HUBMIRROR_UPSTREAM_TOKEN": "hf_upstream_secret_1",
    "HF_TOKEN": "hf_upstream_secret_2",
    "HUGGING_FACE_HUB_TOKEN": "hf_upstream_secret_3",
    "AIRFLOW_CONN_HUBMIRROR_UPSTREAM": '{"password": "hf_upstream_secret_4"}',
    "HUBMIRROR_S3_SECRET_KEY": "writer-secret-from-the-shell",
    "HUBMIRROR_CONFIG": "/etc/hubmirror/with-token.yaml",
}


def test_serve_gets_read_only_s3_and_never_the_upstream_token(s3_server: EmbeddedS3) -> None:
    base = {**SECRETS, "PATH": "/usr/bin", "HUBMIRROR_SERVE_ANONYMOUS": "false"}
    env = serve_environment(base, s3_server, "http://127.0.0.1:8000", "http://127.0.0.1:8080", "pw")
    assert not {"HUBMIRROR_UPSTREAM_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUBMIRROR_CONFIG"} & set(env)
    assert not any(secret in value for value in env.values() for secret in SECRETS.values())
    assert s3_server.secret_key not in env.values()
    assert env["HUBMIRROR_S3_ACCESS_KEY"] == s3_server.read_access_key != s3_server.access_key
    assert env["HUBMIRROR_S3_SECRET_KEY"] == s3_server.read_secret_key  # also what signs presigned URLs
    assert env["HUBMIRROR_SERVE_AIRFLOW_USERNAME"] == SERVE_USER != ADMIN_USER
    assert env["PATH"] == "/usr/bin" and env["HUBMIRROR_SERVE_ANONYMOUS"] == "false"  # serve's own knobs pass


def test_serve_airflow_user_can_trigger_runs_but_not_read_connections(tmp_path) -> None:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    env = AirflowStack(tmp_path / "airflow", 8080).env()
    users = dict(u.split(":") for u in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(","))
    assert users == {ADMIN_USER: "admin", SERVE_USER: SERVE_ROLE}
    manager = SimpleAuthManager.__new__(SimpleAuthManager)  # the role checks need no running Airflow
    serve = SimpleAuthManagerUser(username=SERVE_USER, role=SERVE_ROLE)
    assert manager.is_authorized_dag(method="POST", user=serve, access_entity=DagAccessEntity.RUN,
                                     details=DagDetails(id="hubmirror_sync_repo"))
    assert not manager.is_authorized_connection(method="GET", user=serve)
    assert not manager.is_authorized_variable(method="GET", user=serve)
    assert not manager.is_authorized_pool(method="POST", user=serve)


def test_passwords_file_is_private_and_gains_the_serve_user(tmp_path) -> None:
    path = tmp_path / "passwords.json"
    path.write_text(json.dumps({ADMIN_USER: "kept"}))  # written by an older version: admin only
    passwords = _ensure_passwords(path)
    assert passwords[ADMIN_USER] == "kept" and len(passwords[SERVE_USER]) >= 24
    assert json.loads(path.read_text()) == passwords
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _ensure_passwords(path) == passwords  # stable across starts
