"""docker-compose.yaml with .env.example, as Debian's `docker-compose config` resolves it (no engine needed),
and the least-privilege wiring of serve (issue 10 item 8)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose_config(env_file: Path) -> dict[str, Any]:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is missing: .ci/run installs the Debian package (apt-get install docker-compose)"
    # A clean environment: the values must come from the env file alone, not from this shell.
    proc = subprocess.run([exe, "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yaml"),
                           "--env-file", str(env_file), "config"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return compose_config(ROOT / ".env.example")


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {k: v for k, v in pairs}


def test_env_example_lists_every_variable_compose_reads(config) -> None:
    env = env_example()
    for name in ("HUBMIRROR_UPSTREAM_URL", "HF_TOKEN", "HUBMIRROR_SERVE_S3_SECRET_KEY",
                 "HUBMIRROR_SERVE_AIRFLOW_PASSWORD", "AIRFLOW_UID"):
        assert name in env, name
    upstream = json.loads(config["services"]["airflow-scheduler"]["environment"]["AIRFLOW_CONN_HUBMIRROR_UPSTREAM"])
    assert upstream["host"] == env["HUBMIRROR_UPSTREAM_URL"]


def test_serve_gets_read_only_identities_and_no_upstream_token(config) -> None:
    env, services = env_example(), config["services"]
    serve = services["serve"]["environment"]
    assert serve["HUBMIRROR_S3_ACCESS_KEY"] == env["HUBMIRROR_SERVE_S3_ACCESS_KEY"] != env["MINIO_ROOT_USER"]
    assert serve["HUBMIRROR_S3_SECRET_KEY"] == env["HUBMIRROR_SERVE_S3_SECRET_KEY"] != env["MINIO_ROOT_PASSWORD"]
    assert serve["HUBMIRROR_SERVE_AIRFLOW_USERNAME"] == "hubmirror-serve"
    assert serve["HUBMIRROR_SERVE_AIRFLOW_PASSWORD"] == env["HUBMIRROR_SERVE_AIRFLOW_PASSWORD"]
    assert env["AIRFLOW_ADMIN_PASSWORD"] not in serve.values()
    assert not {"HF_TOKEN", "HUBMIRROR_UPSTREAM_TOKEN", "AIRFLOW_CONN_HUBMIRROR_UPSTREAM"} & set(serve)

    # minio-init gives that key the read-only policy; the policy allows reading and listing, nothing else.
    init = services["minio-init"]
    assert init["environment"]["SERVE_ACCESS_KEY"] == serve["HUBMIRROR_S3_ACCESS_KEY"]
    source = next(v.split(":")[0] for v in init["volumes"] if ":/policy/serve-readonly.json" in v)
    policy = json.loads(Path(source).read_text())
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    assert actions == {"s3:GetObject", "s3:ListBucket"}
    assert all(st["Effect"] == "Allow" for st in policy["Statement"])
    bucket = services["airflow-init"]["environment"]["AIRFLOW_CONN_HUBMIRROR_S3"]
    assert f"arn:aws:s3:::{json.loads(bucket)['extra']['bucket']}/*" in policy["Statement"][0]["Resource"]

    # serve's Airflow user is made by the image's script, limited to the two DAGs serve triggers.
    assert "/opt/hubmirror/bin/airflow-serve-user.sh" in " ".join(services["airflow-init"]["command"])
    script = (ROOT / "deploy" / "airflow-serve-user.sh").read_text()
    assert 'dags="hubmirror_sync_repo hubmirror_verify"' in script and "Admin" not in script


def test_serve_starts_after_the_bucket_is_formatted_and_logs_are_owned(config) -> None:
    services = config["services"]
    assert services["serve"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    init = services["airflow-init"]
    assert init["user"] == "0:0" and 'AIRFLOW_UID}:0" /opt/airflow/logs' in " ".join(init["command"])
    assert all(s.get("user", "").startswith(env_example()["AIRFLOW_UID"])
               for name, s in services.items() if name.startswith("airflow-") and name != "airflow-init")


def test_missing_secret_is_named(tmp_path) -> None:
    lines = [line for line in (ROOT / ".env.example").read_text().splitlines()
             if not line.startswith("HUBMIRROR_SERVE_S3_SECRET_KEY=")]
    (tmp_path / "env").write_text("\n".join(lines) + "\n")
    with pytest.raises(AssertionError, match="set HUBMIRROR_SERVE_S3_SECRET_KEY"):
        compose_config(tmp_path / "env")
