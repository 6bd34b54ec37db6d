"""Run `hubmirror serve` as a subprocess on a free 127.0.0.1 port, and run real HF clients against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hubmirror.embedded_s3 import free_port
from mirror_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HUBMIRROR = str(Path(sys.executable).parent / "hubmirror")


def s3_env(settings: Settings) -> dict[str, str]:
    s3 = settings.s3
    env = {"HUBMIRROR_S3_ENDPOINT": s3.endpoint, "HUBMIRROR_S3_ACCESS_KEY": s3.access_key,
           "HUBMIRROR_S3_SECRET_KEY": s3.secret_key.get_secret_value(), "HUBMIRROR_S3_BUCKET": s3.bucket,
           "HUBMIRROR_S3_REGION": s3.region}
    if s3.public_endpoint:
        env["HUBMIRROR_S3_PUBLIC_ENDPOINT"] = s3.public_endpoint
    return env


@dataclass
class ServeProcess:
    url: str
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop by PID (its process group holds the uvicorn workers) and remove the log."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log_path.unlink(missing_ok=True)


def start_serve(settings: Settings, *, mode: str = "proxy", workers: int = 1, extra_env: dict[str, str] | None = None,
                timeout: float = 30) -> ServeProcess:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBMIRROR_")}
    env.update(s3_env(settings))
    env.update(extra_env or {})
    log_path = Path(tempfile.mkstemp(prefix="hubmirror-serve-", suffix=".log")[1])
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [HUBMIRROR, "serve", "--host", "127.0.0.1", "--port", str(port), "--mode", mode,
             "--workers", str(workers), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    handle = ServeProcess(f"http://127.0.0.1:{port}", process, log_path, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hubmirror serve exited with {process.returncode}:\n{handle.log()}")
        try:
            if httpx.get(f"{handle.url}/healthz", timeout=1).status_code == 200:
                return handle
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    output = handle.log()
    handle.stop()
    raise RuntimeError(f"hubmirror serve did not become healthy in {timeout}s:\n{output}")


def run_client(code: str, endpoint: str, hf_home: Path, *, args: list[str] | None = None,
               extra_env: dict[str, str] | None = None, timeout: float = 300) -> dict:
    """Run Python `code` in a fresh interpreter with HF_ENDPOINT set; it must print one JSON line last."""
    hf_home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE", "HUBMIRROR_"))}
    env.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_UPDATE_CHECK": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "TRANSFORMERS_VERBOSITY": "error", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
                "NO_PROXY": "*", "no_proxy": "*"})
    env.update(extra_env or {})
    result = subprocess.run([sys.executable, "-c", code, *(args or [])], env=env, capture_output=True, text=True,
                            timeout=timeout, cwd=hf_home)
    if result.returncode != 0:
        raise AssertionError(f"client failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"client printed no JSON:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])
