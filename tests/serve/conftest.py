"""A bucket synced once from the fake hub by the real sync engine, and `hubmirror serve` processes on it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hubmirror.demohub import corpus
from hubmirror.embedded_s3 import EmbeddedS3
from mirror_core.catalog import build_catalog
from mirror_core.layout import RepoRef
from mirror_core.settings import Settings
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from tests.conftest import make_settings
from tests.serve.fake_airflow import FakeAirflow
from tests.serve.server import ServeProcess, start_serve

# (repo id, type, revisions): every corpus repo, with all the revision kinds the mirror must answer.
MIRRORED = [
    (corpus.SMALL_MODEL, "models", ["main"]),
    (corpus.LARGE_MODEL, "models", ["main"]),
    (corpus.MANY_FILES_MODEL, "models", ["main"]),
    (corpus.BRANCHY_MODEL, "models", ["main", "dev", "feature/x", "v1.0", "refs/pr/1"]),
    (corpus.GATED_MODEL, "models", ["main"]),
    (corpus.PRIVATE_MODEL, "models", ["main"]),
    (corpus.XET_MODEL, "models", ["main"]),
    (corpus.SINGLE_SEGMENT_MODEL, "models", ["main"]),
    (corpus.DATASET, "datasets", ["main", "refs/convert/parquet"]),
    (corpus.SPACE, "spaces", ["main"]),
    (corpus.TRENDING_MODELS[0], "models", ["main"]),
    (corpus.TRENDING_DATASETS[0], "datasets", ["main"]),
]

GRANTED_TOKEN = "mirror-granted-token"
UNGRANTED_TOKEN = "mirror-plain-token"
SERVE_TOKENS = json.dumps([
    {"token": GRANTED_TOKEN, "name": "granted-user", "grants": ["hubmirror-test/*"]},
    {"token": UNGRANTED_TOKEN, "name": "plain-user"},
])


@dataclass
class Synced:
    settings: Settings
    hub: object
    revisions: dict[tuple[str, str], dict[str, str]]  # (type, id) -> {revision: sha}

    def sha(self, repo_id: str, repo_type: str = "models", revision: str = "main") -> str:
        return self.revisions[(repo_type, repo_id)][revision]


@pytest.fixture(scope="session")
def synced(s3_server: EmbeddedS3, fakehub) -> Synced:
    """Every corpus repo synced once (by mirror_core.sync from the fake hub) into a bucket of its own."""
    settings = make_settings(
        s3_server, f"serve-{uuid.uuid4().hex[:12]}", upstream_url=fakehub.url,
        upstream_token=fakehub.tokens["service"],
        transfer={"allowed_redirect_hosts": [fakehub.cdn_url.split("://", 1)[1]], "concurrency": 8},
    )
    Store(settings.s3).ensure_bucket()
    revisions: dict[tuple[str, str], dict[str, str]] = {}
    started = time.monotonic()
    for repo_id, repo_type, revs in MIRRORED:
        result = sync_repo(settings, RepoRef.parse(repo_id, repo_type), revs, write_report=False)
        assert result.ok, f"sync of {repo_id} failed: {result.error}"
        revisions[(repo_type, repo_id)] = dict(result.revisions)
    build_catalog(settings, Store(settings.s3))  # as the sync DAG's report task does
    print(f"synced {len(MIRRORED)} repos in {time.monotonic() - started:.1f}s")
    return Synced(settings, fakehub, revisions)


def _serve(synced: Synced, mode: str, s3_server: EmbeddedS3) -> Iterator[ServeProcess]:
    env = {"HUBMIRROR_SERVE_TOKENS": SERVE_TOKENS}
    if mode == "redirect":
        env["HUBMIRROR_S3_PUBLIC_ENDPOINT"] = s3_server.endpoint
        env["HUBMIRROR_SERVE_REDIRECT_MIN_SIZE"] = str(1024 * 1024)
    handle = start_serve(synced.settings, mode=mode, extra_env=env)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def serve_proxy(synced: Synced, s3_server: EmbeddedS3) -> Iterator[ServeProcess]:
    yield from _serve(synced, "proxy", s3_server)


@pytest.fixture(scope="session")
def serve_redirect(synced: Synced, s3_server: EmbeddedS3) -> Iterator[ServeProcess]:
    yield from _serve(synced, "redirect", s3_server)


@pytest.fixture
def airflow() -> Iterator[FakeAirflow]:
    """A stand-in Airflow REST API on 127.0.0.1 recording the DAG runs serve triggers."""
    server = FakeAirflow()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
