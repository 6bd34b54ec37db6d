"""Ask Airflow to do what serve may not: sync a repo it lacks, repair a body that failed its hash.

serve never writes the bucket; it triggers `hubmirror_sync_repo` / `hubmirror_verify` through the
Airflow REST API v2 (POST /auth/token, then POST /api/v2/dags/<id>/dagRuns with `logical_date: null`,
AIRFLOW_NOTES.md §3). Triggers are fire-and-forget.

An on-demand sync is what an unknown URL costs the mirror, so it is fenced: the repo must match
`ondemand_allow`; the upstream, asked anonymously (serve has no upstream token), must show it public,
existing and under `ondemand_max_bytes`; and a token bucket shared by all workers (serve.shared_limits)
caps the rate. A repo the upstream lacks or that was refused stays quiet for `ondemand_negative_ttl`, so
clients probing made-up names never reach Airflow (no failed runs in the grid or on the Mirror page).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from mirror_core.layout import RepoRef
from serve import metrics
from serve.auth import matches
from serve.config import ServeSettings
from serve.repo_state import LRU
from serve.shared_limits import SharedLimits

log = logging.getLogger("hubmirror.serve.ondemand")
SYNC_DAG = "hubmirror_sync_repo"
VERIFY_DAG = "hubmirror_verify"
MAX_INFO_BYTES = 32 * 1024**2  # an upstream repo-info answer larger than this is refused, not parsed
MAX_PENDING = 64  # attempts in flight per worker; a flood of made-up names beyond that is dropped at once


def sync_conf(repo: RepoRef) -> dict[str, Any]:
    """The conf of a `hubmirror_sync_repo` run for a repo the bucket lacks (its Params' names)."""
    return {"repo_id": repo.repo_id, "repo_type": repo.singular_type}


def repair_conf(sha256s: list[str]) -> dict[str, Any]:
    """The conf of a `hubmirror_verify` run that re-hashes and repairs just these bodies."""
    return {"dry_run": False, "sha256": sorted(sha256s)}


class AirflowTrigger:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.enabled = settings.airflow_enabled
        self.limits = SharedLimits(settings.ondemand_dir, per_minute=settings.ondemand_rate,
                                   burst=settings.ondemand_burst) if self.enabled else None
        self._quiet: LRU[str, float] = LRU(10_000)  # this worker's copy of keys known to be quiet
        self._token: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self._client: httpx.AsyncClient | None = None

    def _maybe_quiet(self, key: str) -> bool:
        until = self._quiet.get(key)
        return until is not None and until > time.monotonic()

    def _hush(self, key: str, seconds: float) -> None:
        self._quiet.put(key, time.monotonic() + seconds)

    def request_sync(self, repo: RepoRef) -> bool:
        """Consider an on-demand sync of a repo the bucket lacks; False when it is certainly not queued."""
        if not self.enabled or not matches(repo, self.settings.ondemand_allow):
            return False
        key = f"sync:{repo.type}:{repo.repo_id}"
        if self._maybe_quiet(key) or len(self._tasks) >= MAX_PENDING:
            return False
        self._hush(key, 1.0)  # a burst of misses in this worker makes one attempt
        self._spawn(self._sync_if_fit(repo, key))
        return True

    async def _sync_if_fit(self, repo: RepoRef, key: str) -> None:
        limits = self.limits
        assert limits is not None
        interval = self.settings.ondemand_interval
        if not await anyio.to_thread.run_sync(lambda: limits.claim(key, interval, take_token=True)):
            metrics.ONDEMAND.labels(SYNC_DAG, "limited").inc()
            return
        self._hush(key, interval)
        refusal = await self.upstream_refusal(repo)
        if refusal is not None:
            reason, lasting = refusal
            metrics.ONDEMAND.labels(SYNC_DAG, "refused").inc()
            log.info("on-demand sync of %s not triggered: %s", repo, reason)
            if lasting:  # a transient failure stays quiet only for the interval the claim set
                quiet = self.settings.ondemand_negative_ttl
                self._hush(key, quiet)
                await anyio.to_thread.run_sync(lambda: limits.quiet(key, quiet))
            return
        await self.trigger(SYNC_DAG, sync_conf(repo))

    async def upstream_refusal(self, repo: RepoRef) -> tuple[str, bool] | None:
        """Why the upstream's anonymous repo info rules out an on-demand sync (and whether that lasts), or None.

        Anonymous on purpose: serve never holds the upstream token. A repo anonymous callers cannot see
        (private, or absent: the Hub answers both alike) is not synced on demand; neither is a gated one,
        since serve cannot tell whether the service token was granted it. Put those in the sync selection.
        """
        url = f"{self.settings.upstream_url}/api/{repo.type}/{quote(repo.repo_id, safe='/')}"
        try:
            async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client, \
                    client.stream("GET", url, params={"blobs": "true"}) as r:
                if r.status_code in (401, 403, 404, 410):
                    return f"not on the upstream (or not public there): {r.status_code}", True
                if r.status_code != 200:
                    return f"the upstream answered {r.status_code} to a repo info request", False
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_INFO_BYTES:
                        return "the upstream's repo info is too large to check", True
            info = json.loads(body)
        except (httpx.HTTPError, ValueError) as exc:
            return f"the upstream's repo info could not be read: {exc}", False
        if not isinstance(info, dict):
            return "the upstream's repo info is not an object", False
        if info.get("private") or info.get("gated") not in (None, False):
            return "gated or private on the upstream: add it to the sync selection instead", True
        size = info.get("usedStorage")
        if not isinstance(size, int):
            size = sum(s.get("size") or 0 for s in info.get("siblings") or [] if isinstance(s, dict))
        cap = self.settings.ondemand_max_bytes
        if size > cap:
            return f"{size} bytes upstream, over HUBMIRROR_SERVE_ONDEMAND_MAX_BYTES={cap}", True
        return None

    def request_repair(self, sha256s: list[str]) -> bool:
        if not self.enabled:
            return False
        key = "verify:" + ",".join(sorted(sha256s))
        if self._maybe_quiet(key):
            return False
        self._hush(key, self.settings.ondemand_interval)
        self._spawn(self._repair(sha256s, key))
        return True

    async def _repair(self, sha256s: list[str], key: str) -> None:
        limits = self.limits
        assert limits is not None
        if await anyio.to_thread.run_sync(
                lambda: limits.claim(key, self.settings.ondemand_interval, take_token=False)):
            await self.trigger(VERIFY_DAG, repair_conf(sha256s))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _auth(self, client: httpx.AsyncClient) -> str:
        assert self.settings.airflow_password is not None
        r = await client.post("/auth/token", json={"username": self.settings.airflow_username,
                                                   "password": self.settings.airflow_password.get_secret_value()})
        r.raise_for_status()
        return r.json()["access_token"]

    async def trigger(self, dag_id: str, conf: dict[str, Any]) -> str | None:
        """POST a DAG run; returns its run id, or None (logged) when Airflow refused or is down."""
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.settings.airflow_url or "", timeout=10)
        body = {"logical_date": None, "conf": conf}
        try:
            for attempt in range(2):
                if self._token is None:
                    self._token = await self._auth(self._client)
                r = await self._client.post(f"/api/v2/dags/{dag_id}/dagRuns", json=body,
                                            headers={"Authorization": f"Bearer {self._token}"})
                if r.status_code == 401 and attempt == 0:
                    self._token = None  # expired JWT: log in again once
                    continue
                r.raise_for_status()
                run_id = r.json().get("dag_run_id")
                metrics.ONDEMAND.labels(dag_id, "ok").inc()
                log.info("triggered %s run %s conf=%s", dag_id, run_id, conf)
                return run_id
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            metrics.ONDEMAND.labels(dag_id, "error").inc()
            log.warning("could not trigger %s with conf=%s: %s", dag_id, conf, exc)
        return None

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
