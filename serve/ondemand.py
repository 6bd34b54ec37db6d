"""Ask Airflow to do what serve may not: sync a repo it lacks, repair a body that failed its hash.

serve never writes the bucket; it triggers `hubmirror_sync_repo` / `hubmirror_verify` through the
Airflow REST API v2 (POST /auth/token, then POST /api/v2/dags/<id>/dagRuns with `logical_date: null`,
AIRFLOW_NOTES.md §3). Triggers are fire-and-forget and rate-limited per key, so a client retrying a
missing repo cannot flood the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from mirror_core.layout import RepoRef
from serve import metrics
from serve.config import ServeSettings

log = logging.getLogger("hubmirror.serve.ondemand")
SYNC_DAG = "hubmirror_sync_repo"
VERIFY_DAG = "hubmirror_verify"


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
        self._last: dict[Any, float] = {}
        self._token: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self._client: httpx.AsyncClient | None = None

    def _due(self, key: Any) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.settings.ondemand_interval:
            return False
        if len(self._last) > 100_000:
            self._last.clear()
        self._last[key] = now
        return True

    def request_sync(self, repo: RepoRef) -> bool:
        """Queue a sync of a repo the bucket lacks; False when disabled or rate-limited."""
        if not self.enabled or not self._due(("sync", repo)):
            return False
        self._spawn(SYNC_DAG, sync_conf(repo))
        return True

    def request_repair(self, sha256s: list[str]) -> bool:
        if not self.enabled or not self._due(("verify", tuple(sorted(sha256s)))):
            return False
        self._spawn(VERIFY_DAG, repair_conf(sha256s))
        return True

    def _spawn(self, dag_id: str, conf: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self.trigger(dag_id, conf))
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
