"""`hubmirror up` leaves `.hubmirror/env` behind: sourced in a shell, the CLI works against the running stack."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from hubmirror.embedded_s3 import EmbeddedS3, free_port, start_embedded_s3
from hubmirror.stack import beside_python, write_env_file
from mirror_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_sourcing_the_env_file_points_the_cli_at_the_stack(s3_server: EmbeddedS3, bucket_settings: Settings,
                                                           tmp_path: Path) -> None:
    config = tmp_path / "it's a dir" / "demo config.yaml"  # quoting: a space and a quote survive `source`
    config.parent.mkdir()
    config.write_text("retention: {keep_last: 2}\n")
    values = {**s3_server.env(), "HUBMIRROR_S3_BUCKET": bucket_settings.s3_bucket,
              "HUBMIRROR_UPSTREAM_URL": "http://127.0.0.1:9", "HUBMIRROR_CONFIG": str(config)}
    env_file = write_env_file(tmp_path / "env", values)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # it holds the writer's secret key
    shell_env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBMIRROR_", "HF_"))}
    shell_env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(["bash", "-c", f'source "$1" && env | grep ^HUBMIRROR_ && "{sys.executable}" -m hubmirror '
                           "status --json", "-", str(env_file)], env=shell_env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    exported = dict(line.split("=", 1) for line in done.stdout.splitlines() if line.startswith("HUBMIRROR_"))
    assert exported == values
    status = json.loads(done.stdout[done.stdout.index("{"):])
    assert status == {"repos": [], "problems": []}


def test_the_s3_port_is_kept_across_restarts_when_given(tmp_path: Path) -> None:
    port = free_port()
    for _ in range(2):
        server = start_embedded_s3(tmp_path / "s3", s3_port=port)
        try:
            assert server.endpoint == f"http://127.0.0.1:{port}"
            assert server.client().bucket_exists(server.bucket)
        finally:
            server.stop()


def test_the_banner_names_commands_by_the_path_that_runs_them(tmp_path: Path, monkeypatch) -> None:
    """After `make up` the commands live in .venv/bin, which is not on PATH: the banner says `.venv/bin/hf`."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "hf").write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.chdir(tmp_path)
    assert beside_python("hf") == ".venv/bin/hf"
    assert beside_python("not-installed") == "not-installed"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # not below the working directory: absolute, never `../.venv/bin/hf`
    assert beside_python("hf") == str(bin_dir / "hf")
