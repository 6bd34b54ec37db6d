"""The "Mirror" page inside the Airflow UI: what the bucket holds and how its syncs went, per repo.

Served by Airflow's api-server as a plugin FastAPI sub-app under /hubmirror. Sub-apps are not
protected by Airflow's auth on their own, so every route depends on `GetUserDep` (Bearer token, or the
UI's `_token` cookie when shown in the UI's iframe). The bucket side comes from mirror_core (read
only); the Airflow side (latest sync task per repo) from the metadata DB the api-server owns.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlparse

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from rich.filesize import decimal

from mirror_core.settings import airflow_knobs

SYNC_DAGS = ("hubmirror_sync", "hubmirror_sync_repo")
RECENT_RUNS = 500  # how many recent task instances to scan for per-repo sync state

# FastAPI's own /docs, /redoc and /openapi.json would skip GetUserDep: they are re-added below behind it.
app = FastAPI(title="hubmirror", description="Mirror status inside Airflow", docs_url=None, redoc_url=None,
              openapi_url=None)


@dataclass
class RepoRow:
    repo_type: str  # model | dataset | space
    repo_id: str
    revisions: dict[str, str]
    last_sync: str | None
    size: int | None
    files: int | None
    state: str  # latest Airflow sync task state, or "mirrored" / "broken"
    problem: str | None = None
    airflow_url: str | None = None
    serve_url: str | None = None

    @property
    def label(self) -> str:
        return f"{self.repo_type}/{self.repo_id}"


def _serve_url(repo_type: str, repo_id: str) -> str | None:
    base = airflow_knobs().serve_url.rstrip("/")
    if not base:
        return None
    prefix = {"model": "", "dataset": "/datasets", "space": "/spaces"}[repo_type]
    return f"{base}{prefix}/{repo_id}"


def bucket_rows() -> list[RepoRow]:
    """Every mirrored repo with its refs, last sync time and the size of the revision the catalog shows."""
    from mirror_core.inventory import list_repos, read_manifest, read_many, read_refs
    from mirror_core.store import Store
    from plugins.hooks import mirror_settings

    store = Store(mirror_settings().s3)
    published = {str(o.repo): o for o in list_repos(store).repos.values() if o.refs is not None}
    refs, refs_errors = read_many(published, lambda name: read_refs(store, published[name].repo))
    heads = {name: published[name].manifest_key(chosen[1])  # repo name -> manifest key of its shown revision
             for name, r in refs.items() if (chosen := r.default_revision())}
    manifests, manifest_errors = read_many(heads.values(), lambda key: read_manifest(store, key))
    rows = []
    for name, objects in published.items():
        repo, r, head = objects.repo, refs.get(name), heads.get(name, "")
        manifest = manifests.get(head)
        problem = refs_errors.get(name) or manifest_errors.get(head)
        rows.append(RepoRow(
            repo_type=repo.singular_type, repo_id=repo.repo_id,
            revisions={**(r.branches if r else {}), **(r.tags if r else {})},
            last_sync=r.updated_at.isoformat() if r else None,
            size=manifest.total_size if manifest else None,
            files=len(manifest.files) if manifest else None,
            state="broken" if problem else "mirrored", problem=problem,
            serve_url=_serve_url(repo.singular_type, repo.repo_id),
        ))
    return rows


def _ui_base() -> str:
    from airflow.configuration import conf

    return urlparse(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def latest_sync_tasks() -> dict[str, dict[str, Any]]:
    """Per repo label ("model/org/name"): state, time and UI link of its latest sync_repo task."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    base = _ui_base()
    latest: dict[str, dict[str, Any]] = {}
    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.map_index,
                   TaskInstance.rendered_map_index, TaskInstance.state, TaskInstance.end_date,
                   TaskInstance.start_date, DagRun.conf)
            .join(DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id))
            .where(TaskInstance.dag_id.in_(SYNC_DAGS), TaskInstance.task_id == "sync_repo")
            .order_by(TaskInstance.start_date.desc().nulls_last())
            .limit(RECENT_RUNS)
        ).all()
    for dag_id, run_id, map_index, rendered, state, end_date, start_date, run_conf in rows:
        if dag_id == "hubmirror_sync_repo":
            run_conf = run_conf or {}
            label = f"{str(run_conf.get('repo_type', 'model')).rstrip('s')}/{run_conf.get('repo_id')}"
        else:
            label = rendered or ""
        if not label or label in latest:
            continue
        url = f"{base}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/sync_repo"
        if map_index is not None and map_index >= 0:
            url += f"/mapped/{map_index}"
        when: datetime | None = end_date or start_date
        latest[label] = {"state": str(state or "queued"), "when": when.isoformat() if when else None,
                         "dag_id": dag_id, "run_id": run_id, "url": url}
    return latest


def mirror_rows() -> tuple[list[RepoRow], str | None]:
    """Bucket rows joined with their latest Airflow sync; repos only Airflow knows (failed first sync) too.

    Also returns why the bucket could not be read, if it could not (the Airflow side still shows).
    """
    from mirror_core.errors import HubmirrorError

    try:
        rows, error = {row.label: row for row in bucket_rows()}, None
    except HubmirrorError as exc:
        rows, error = {}, f"cannot read the mirror bucket: {exc}"
    for label, ti in latest_sync_tasks().items():
        row = rows.get(label)
        if row is None:
            repo_type, _, repo_id = label.partition("/")
            if repo_type not in ("model", "dataset", "space") or not repo_id:
                continue
            row = rows[label] = RepoRow(repo_type, repo_id, {}, None, None, None, "never synced")
        if ti["state"] != "success" or row.state != "broken":
            row.state = ti["state"]
        row.airflow_url = ti["url"]
    return sorted(rows.values(), key=lambda r: (r.repo_type, r.repo_id.lower())), error


def _size(n: int | None) -> str:
    return "–" if n is None else decimal(n)


_COLOURS = {"success": "#16a34a", "mirrored": "#16a34a", "failed": "#dc2626", "broken": "#dc2626",
            "upstream_failed": "#dc2626", "up_for_retry": "#d97706", "running": "#2563eb", "queued": "#6b7280"}


def render(rows: list[RepoRow], user: str, error: str | None = None) -> str:
    e = html.escape
    body = []
    for r in rows:
        links = []
        if r.airflow_url:
            links.append(f'<a target="_top" href="{e(r.airflow_url)}">latest sync task</a>')
        if r.serve_url:
            links.append(f'<a target="_blank" href="{e(r.serve_url)}">open in mirror</a>')
        revs = ", ".join(f"{e(k)}@{e(v[:8])}" for k, v in sorted(r.revisions.items()))
        colour = _COLOURS.get(r.state, "#6b7280")
        body.append(
            f"<tr><td>{e(r.repo_type)}</td><td><b>{e(r.repo_id)}</b></td>"
            f'<td><span style="color:{colour}">●</span> {e(r.state)}'
            f"{'<br><small>' + e(r.problem) + '</small>' if r.problem else ''}</td>"
            f"<td>{e(r.last_sync or '–')}</td><td>{_size(r.size)}</td>"
            f"<td>{r.files if r.files is not None else '–'}</td>"
            f"<td><small>{revs or '–'}</small></td><td>{' · '.join(links)}</td></tr>"
        )
    base = _ui_base()
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Mirror</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#111}}table{{border-collapse:collapse;width:100%}}
th,td{{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #e5e7eb;vertical-align:top}}
th{{background:#f9fafb}}a{{color:#2563eb}}</style></head><body>
<h2>hubmirror: {len(rows)} repos</h2>{f'<p style="color:#dc2626">{e(error)}</p>' if error else ''}
<p>Signed in as {e(user)}. Sync one repo (press Trigger):
<a target="_top" href="{base}/dags/hubmirror_sync_repo">hubmirror_sync_repo</a> ·
whole selection: <a target="_top" href="{base}/dags/hubmirror_sync">hubmirror_sync</a> ·
<a href="{base}/hubmirror/api/repos">JSON</a></p>
<table><thead><tr><th>type</th><th>repo</th><th>state</th><th>last sync (UTC)</th><th>size</th><th>files</th>
<th>revisions</th><th>links</th></tr></thead><tbody>{''.join(body)}</tbody></table></body></html>"""


@app.get("/ui", response_class=HTMLResponse)
def mirror_page(user: GetUserDep) -> str:
    rows, error = mirror_rows()
    return render(rows, user.get_name(), error)


@app.get("/api/repos")
def mirror_repos(user: GetUserDep) -> dict[str, Any]:
    rows, error = mirror_rows()
    return {"repos": [asdict(r) for r in rows], "error": error}


@app.get("/openapi.json", include_in_schema=False)
def openapi_schema(user: GetUserDep) -> dict[str, Any]:
    return app.openapi()


@app.get("/docs", include_in_schema=False)
def openapi_docs(request: Request, user: GetUserDep) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=f"{request.scope.get('root_path', '')}/openapi.json", title="hubmirror")
