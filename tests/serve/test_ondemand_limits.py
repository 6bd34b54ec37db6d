"""On-demand syncs when they are switched on: allow-list, size cap and existence checked on the upstream
(anonymously) before Airflow is asked, and one rate limit shared by every worker.

`hubmirror serve` runs with 2 workers against the fake hub as upstream and a stand-in Airflow that
records the DAG runs it is asked for.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hubmirror.demohub import corpus
from mirror_core.errors import ConfigError
from mirror_core.settings import Settings
from serve.shared_limits import SharedLimits
from tests.serve.fake_airflow import FakeAirflow, airflow_env, wait_for
from tests.serve.server import ServeProcess, start_serve

BURST = 3


@pytest.fixture(params=[10])
def served(request, bucket_settings: Settings, airflow: FakeAirflow, fakehub,
           tmp_path: Path) -> Iterator[ServeProcess]:
    """serve with on-demand on; the token bucket holds `request.param` tokens (each upstream check takes one)."""
    handle = start_serve(bucket_settings, workers=2, extra_env={
        **airflow_env(airflow),
        "HUBMIRROR_SERVE_ONDEMAND_ANONYMOUS": "true",
        "HUBMIRROR_SERVE_ONDEMAND_ALLOW": f"{corpus.TRENDING_PREFIX}/*,hubmirror-test/*",
        "HUBMIRROR_SERVE_ONDEMAND_MAX_BYTES": str(10 * 1024**2),
        "HUBMIRROR_SERVE_ONDEMAND_RATE": "0.001",  # per minute: after the burst, nothing in this test's time
        "HUBMIRROR_SERVE_ONDEMAND_BURST": str(request.param),
        "HUBMIRROR_SERVE_RUNTIME_DIR": str(tmp_path / "run"),
        "HUBMIRROR_UPSTREAM_URL": fakehub.url,
    })
    yield handle
    handle.stop()


def _miss(serve: ServeProcess, repo_id: str, times: int = 1) -> None:
    for _ in range(times):
        r = httpx.get(f"{serve.url}/api/models/{repo_id}", timeout=10)
        assert (r.status_code, r.headers["x-error-code"]) == (401, "RepoNotFound"), repo_id


def _synced(airflow: FakeAirflow) -> list[str]:
    return [conf["repo_id"] for dag, conf in airflow.runs if dag == "hubmirror_sync_repo"]


def test_only_allowed_existing_public_small_repos_are_synced(served: ServeProcess, airflow: FakeAirflow) -> None:
    wanted = corpus.TRENDING_MODELS[0]
    _miss(served, wanted, times=6)  # both workers see it; one run
    for refused in ("hubmirror-test/does-not-exist", corpus.PRIVATE_MODEL, corpus.GATED_MODEL,
                    corpus.SMALL_MODEL,  # 50 MiB upstream: over the 10 MiB cap
                    "elsewhere/model"):  # not in the allow-list
        _miss(served, refused, times=3)
    assert wait_for(lambda: _synced(airflow) == [wanted])
    time.sleep(1.0)
    assert _synced(airflow) == [wanted]
    log = served.log()
    assert "not on the upstream" in log and "gated or private" in log and "HUBMIRROR_SERVE_ONDEMAND_MAX_BYTES" in log


def test_missing_repos_are_not_asked_again(served: ServeProcess, airflow: FakeAirflow, fakehub) -> None:
    _miss(served, "hubmirror-test/no-such-repo", times=3)
    assert wait_for(lambda: "not on the upstream" in served.log())
    before = served.log().count("not on the upstream")
    _miss(served, "hubmirror-test/no-such-repo", times=10)
    time.sleep(0.5)
    assert served.log().count("not on the upstream") == before  # remembered: no new upstream look-up
    assert airflow.runs == []


@pytest.mark.parametrize("served", [BURST], indirect=True)
def test_rate_limit_is_shared_by_the_workers(served: ServeProcess, airflow: FakeAirflow) -> None:
    for repo_id in corpus.TRENDING_MODELS[:12]:
        _miss(served, repo_id, times=2)
    assert wait_for(lambda: len(airflow.runs) >= BURST)
    time.sleep(1.0)
    assert len(airflow.runs) == BURST, airflow.runs


def _hammer(directory: str, out: multiprocessing.Queue) -> None:
    limits = SharedLimits(Path(directory), per_minute=0.001, burst=5)
    out.put(sum(limits.claim(f"k{i}", 60, take_token=True) for i in range(40)))


def test_token_bucket_across_processes(tmp_path: Path) -> None:
    """Four processes claiming at once get `burst` tokens between them, not `burst` each."""
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), out)) for _ in range(4)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(got) == 5, got
    limits = SharedLimits(tmp_path, per_minute=0.001, burst=5)
    assert limits.claim("repair", 60, take_token=False) and not limits.claim("repair", 60, take_token=False)


def test_unusable_runtime_dir_is_a_clear_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="HUBMIRROR_SERVE_RUNTIME_DIR"):
        SharedLimits(tmp_path / "file" / "run", per_minute=1, burst=1)


def test_upstream_check_tells_lasting_from_transient_refusals(fakehub, tmp_path: Path) -> None:
    """Absent, gated or too large is remembered for the negative TTL; an unreachable upstream is not."""
    import asyncio

    from hubmirror.embedded_s3 import free_port
    from mirror_core.layout import RepoRef
    from serve.config import load_serve_settings
    from serve.ondemand import AirflowTrigger

    s3 = {"endpoint": "http://127.0.0.1:1", "access_key": "k", "secret_key": "s", "bucket": "b", "region": "r"}

    def check(upstream: str, repo_id: str) -> tuple[str, bool] | None:
        settings = load_serve_settings(s3=s3, upstream_url=upstream, ondemand_max_bytes=10 * 1024**2,
                                       runtime_dir=tmp_path)
        return asyncio.run(AirflowTrigger(settings).upstream_refusal(RepoRef.parse(repo_id)))

    assert check(fakehub.url, corpus.TRENDING_MODELS[1]) is None
    for repo_id in ("hubmirror-test/absent", corpus.GATED_MODEL, corpus.PRIVATE_MODEL, corpus.SMALL_MODEL):
        refusal = check(fakehub.url, repo_id)
        assert refusal is not None and refusal[1] is True, (repo_id, refusal)
    refusal = check(f"http://127.0.0.1:{free_port()}", corpus.TRENDING_MODELS[1])
    assert refusal is not None and refusal[1] is False and "could not be read" in refusal[0]
