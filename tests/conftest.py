"""Session-wide fixtures: a real SeaweedFS S3, the fake upstream hub, isolated Airflow home.

Airflow reads its configuration at import time, so its environment is set here, before any
test module can import it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="hubmirror-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
# Real HF clients in tests must never reach out to huggingface.co or pypi.org.
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_UPDATE_CHECK"] = "1"
os.environ.pop("HF_TOKEN", None)

import pytest  # noqa: E402

from hubmirror.embedded_s3 import EmbeddedS3, start_embedded_s3  # noqa: E402
from mirror_core.settings import Settings, load_settings  # noqa: E402
from mirror_core.store import Store  # noqa: E402

_started_s3: list[EmbeddedS3] = []


def _alive_weeds(data_dirs: list[Path]) -> list[str]:
    alive = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if "weed" in cmdline and "zombie" not in state and any(str(d) in cmdline for d in data_dirs):
            alive.append(f"{proc.name}: {cmdline[:120]}")
    return alive


@pytest.fixture(scope="session")
def s3_server() -> Iterator[EmbeddedS3]:
    """One SeaweedFS for the whole session; tests isolate themselves by bucket."""
    server = start_embedded_s3()
    _started_s3.append(server)
    yield server
    server.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Nothing the suite started may outlive it: no `weed` process remains."""
    for server in _started_s3:
        server.stop()
    leftovers = _alive_weeds([s.data_dir for s in _started_s3])
    if leftovers:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nERROR: weed processes still running after the suite:\n" + "\n".join(leftovers))


def make_settings(s3: EmbeddedS3, bucket: str, **overrides) -> Settings:
    return load_settings(s3_endpoint=s3.endpoint, s3_access_key=s3.access_key, s3_secret_key=s3.secret_key,
                         s3_bucket=bucket, s3_region="us-east-1", **overrides)


@pytest.fixture
def bucket_settings(s3_server: EmbeddedS3) -> Settings:
    """Settings pointing at a fresh, empty, formatted bucket of its own (upstream left default)."""
    settings = make_settings(s3_server, f"t-{uuid.uuid4().hex[:16]}")
    Store(settings.s3).ensure_bucket()
    return settings


@pytest.fixture
def store(bucket_settings: Settings) -> Store:
    return Store(bucket_settings.s3)


# --- fake upstream hub (hubmirror/demohub) ---------------------------------------------------------------
FAKEHUB_LARGE_SIZE = 40 * 1024 * 1024  # LARGE_MODEL's file: > 2 multipart parts, yet quick on loopback


@pytest.fixture(scope="session")
def fakehub():
    """The fake HF Hub + CDN subprocess, shared by the session (call `.reset()` after changing faults).

    Generated bodies are cached in HUBMIRROR_FAKEHUB_DATA (default ~/.cache/hubmirror-fakehub) so
    later sessions start in about a second; commits made by tests live only in the subprocess.
    """
    from hubmirror.demohub.server import start_fakehub

    data = Path(os.environ.get("HUBMIRROR_FAKEHUB_DATA", Path.home() / ".cache" / "hubmirror-fakehub"))
    handle = start_fakehub(data, large_size=FAKEHUB_LARGE_SIZE)
    yield handle
    handle.stop()
