"""The mirror's own JSON APIs beside the HF surface: cache statistics and repos, jobs, a tunasync-style status.

All of them read the catalog (one local SQLite file) and the run/trending history, never a manifest per repo,
and obey the same access rules as the HF surface: without a grant a restricted repo does not appear anywhere,
not in a count, a listing, a job's entries or an error line. Shapes are documented in README.md ("Mirror APIs").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from rich.filesize import decimal
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mirror_core.catalog import SORTS, Catalog, CatalogRow
from mirror_core.history import JobRef, list_jobs, read_jobs
from mirror_core.layout import RepoRef
from mirror_core.settings import airflow_knobs
from serve.api import json_response
from serve.auth import Identity
from serve.errors import AuthRequired, BadRequest, HFError, RouteNotFound
from serve.listing import visible_to

if TYPE_CHECKING:
    from serve.context import AppContext

MAX_REPOS_PAGE = 100
MAX_JOBS_PAGE = 50
JOB_SORTS = ("trending", "downloads", "likes", "size")


class JobNotFound(RouteNotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id[:80]!r}: list them with /api/jobs")


# -- access and parameters ---------------------------------------------------------------------

class Visible(Protocol):
    """What visibility() returns: a record's upstream restriction is optional (None: unknown, fail closed)."""

    def __call__(self, type_: str, repo_id: str, upstream_restricted: bool | None = None) -> bool: ...


def visibility(catalog: Catalog | None, identity: Identity) -> Visible:
    """A predicate (type, id, restricted upstream or None) -> may this identity see the repo.

    Catalogued repos follow the catalog's restriction; others follow what their record says (a trending
    verdict's gated/private), and unknown means restricted (fail closed).
    """
    restricted = set(catalog.restricted_ids()) if catalog is not None else set()
    known = catalog.ids() if catalog is not None else frozenset()

    def visible(type_: str, repo_id: str, upstream_restricted: bool | None = None) -> bool:
        if identity.admin:
            return True
        key = (type_, repo_id)
        hidden = key in restricted if key in known else upstream_restricted is not False
        return not hidden or identity.granted(RepoRef.parse(repo_id, type_))

    return visible


def int_param(q: Any, name: str, default: int | None, low: int = 0, high: int | None = None) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    if not raw.lstrip("-").isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bound = f" and at most {high}" if high is not None else ""
        raise BadRequest(f"{name} must be an integer of at least {low}{bound}, not {raw[:20]!r}")
    return int(raw)


def _paging(q: Any, default: int, high: int) -> tuple[int, int]:
    return int_param(q, "page", 1, 1) or 1, int_param(q, "limit", default, 1, high) or default


def _pagination(page: int, limit: int, total: int) -> dict[str, int]:
    return {"page": page, "limit": limit, "total": total, "pages": max(1, math.ceil(total / limit))}


def gated_param(q: Any) -> bool | None:
    value = q.get("gated")
    if value is None or value == "":
        return None
    if value.lower() not in ("true", "false"):
        raise BadRequest(f"gated must be true or false, not {value[:20]!r}")
    return value.lower() == "true"


def repo_json(row: CatalogRow) -> dict[str, Any]:
    """One catalogued repo as the cache and status APIs show it."""
    return {
        "type": row.repo_type[:-1], "id": row.repo_id, "revision": row.revision, "sha": row.sha,
        "size": row.total_size, "files": row.file_count, "tags": row.tags, "library": row.library,
        "pipeline": row.pipeline, "gated": row.gated or False, "private": row.private, "downloads": row.downloads,
        "likes": row.likes, "trendingScore": row.trending_score, "createdAt": row.created_at or None,
        "lastModified": row.last_modified, "mirroredAt": row.mirrored_at, "snippet": row.snippet,
        "lastSync": {"ok": row.sync_ok, "started": row.sync_started, "ended": row.sync_ended,
                     "error": row.sync_error},
    }


# -- endpoints --------------------------------------------------------------------------------

async def cache_stats(ctx: AppContext, request: Request, identity: Identity, catalog: Catalog | None) -> Response:
    if catalog is None:
        return json_response({"repos": {"total": 0}, "catalog_built_at": None})
    visible = visibility(catalog, identity)
    allowed = visible_to(catalog, identity)
    stats = catalog.stats()
    by_type = {t: n for t in ("models", "datasets", "spaces") if (n := catalog.count(type=t, restricted=allowed))}
    logical, stored = stats.get("logical_bytes", 0), stats.get("stored_bytes", 0)
    requested = [{"type": r.singular_type, "id": r.repo_id, "requests": n}
                 for r, n in ctx.requested.most_common() if visible(r.type, r.repo_id)][:10]
    return json_response({
        "repos": {**by_type, "total": sum(by_type.values())}, "files": stats.get("files", 0),
        "manifests": stats.get("manifests"),
        "logical_bytes": logical, "stored_bytes": stored, "blobs": stats.get("blobs"),
        "dedup_ratio": round(logical / stored, 3) if stored else None, "last_sync": stats.get("last_sync"),
        "catalog_built_at": stats.get("built_at"), "most_requested": requested,
    })


async def cache_repos(ctx: AppContext, request: Request, identity: Identity, catalog: Catalog | None) -> Response:
    q = request.query_params
    page, limit = _paging(q, 20, MAX_REPOS_PAGE)
    sort = q.get("sort") or ("relevance" if q.get("search") else "trending")
    if sort not in SORTS:
        raise BadRequest(f"cannot sort by {sort[:40]!r}: use one of {', '.join(SORTS)}")
    repo_type = q.get("type") or None
    if repo_type not in (None, "model", "dataset", "space", "models", "datasets", "spaces"):
        raise BadRequest(f"type must be model, dataset or space, not {repo_type[:20]!r}")
    if catalog is None:
        return json_response({"items": [], "pagination": _pagination(page, limit, 0)})
    allowed = visible_to(catalog, identity)
    filters = {"type": repo_type, "tags": [t for t in q.getlist("tag") if t], "gated": gated_param(q),
               "min_size": int_param(q, "sizeGte", None), "max_size": int_param(q, "sizeLte", None),
               "restricted": allowed}
    text = q.get("search") or None
    total = catalog.count(text, **filters)
    rows = catalog.search(text, sort=sort, limit=limit, offset=(page - 1) * limit, **filters)
    return json_response({"items": [repo_json(r) for r in rows], "pagination": _pagination(page, limit, total)})


def job_summary(job: JobRef, doc: dict[str, Any], visible: Callable[[str, str, bool | None], bool],
                 hidden_ids: list[str]) -> dict[str, Any]:
    if job.kind == "trending":
        considered = [c for c in doc.get("considered") or []
                      if visible(_plural(c.get("type")), c.get("id", ""), bool(c.get("gated") or c.get("private")))]
        return {"id": job.id, "kind": "trending", "status": "success", "started_at": doc.get("created_at"),
                "ended_at": doc.get("created_at"), "upstream": doc.get("upstream"),
                "counts": {"considered": len(considered), "selected": sum(1 for c in considered if c.get("selected"))},
                "errors": []}
    errors = [e for e in doc.get("errors") or [] if isinstance(e, str) and not any(h in e for h in hidden_ids)]
    counts: dict[str, Any] = {k: doc[k] for k in ("files_fetched", "files_reused", "bytes_fetched", "bytes_reused")
                              if k in doc}
    if isinstance(doc.get("repos"), list):
        counts["repos"] = len([r for r in doc["repos"] if isinstance(r, dict)
                               and visible(r.get("repo_type", ""), r.get("repo_id", ""), None)])
    ok = doc.get("ok")
    return {"id": job.id, "kind": doc.get("kind", job.kind),
            "status": "success" if ok is True else "failed" if ok is False else "unknown",
            "started_at": doc.get("started_at"), "ended_at": doc.get("written_at"), "counts": counts,
            "errors": errors}


def _plural(type_: Any) -> str:
    return {"model": "models", "dataset": "datasets", "space": "spaces"}.get(type_, type_ or "models")


def hidden_ids(catalog: Catalog | None, identity: Identity) -> list[str]:
    if catalog is None or identity.admin:
        return []
    return [i for t, i in catalog.restricted_ids() if not identity.granted(RepoRef.parse(i, t))]


async def all_jobs(ctx: AppContext) -> list[JobRef]:
    """Every job, listed at most once per LIST_TTL window (the history only grows, a little staleness is fine)."""
    key = ("jobs", int(time.monotonic() // max(ctx.settings.list_ttl, 0.001)))
    found: list[JobRef] | None = ctx.state.pages.get(key)
    if found is None:
        found = await ctx.state.run(list_jobs, ctx.store)
        ctx.state.pages.put(key, found, 200 * len(found) + 1)
    return found


async def jobs(ctx: AppContext, request: Request, identity: Identity, catalog: Catalog | None) -> Response:
    q = request.query_params
    page, limit = _paging(q, 20, MAX_JOBS_PAGE)
    kind = q.get("kind") or None
    every = [j for j in await all_jobs(ctx) if kind is None or j.kind == kind]
    chosen = every[(page - 1) * limit: page * limit]
    docs = await ctx.state.run(read_jobs, ctx.store, chosen)
    visible, hidden = visibility(catalog, identity), hidden_ids(catalog, identity)
    items = [job_summary(j, docs[j.id], visible, hidden) for j in chosen if j.id in docs]
    return json_response({"items": items, "pagination": _pagination(page, limit, len(every))})


async def _job(ctx: AppContext, job_id: str) -> tuple[JobRef, dict[str, Any]]:
    job = next((j for j in await all_jobs(ctx) if j.id == job_id), None)
    docs = await ctx.state.run(read_jobs, ctx.store, [job]) if job is not None else {}
    if job is None or job_id not in docs:
        raise JobNotFound(job_id)
    return job, docs[job_id]


async def job(ctx: AppContext, request: Request, identity: Identity, catalog: Catalog | None) -> Response:
    found, doc = await _job(ctx, request.path_params["job_id"])
    visible = visibility(catalog, identity)
    out = job_summary(found, doc, visible, hidden_ids(catalog, identity))
    if found.kind != "trending" and isinstance(doc.get("repos"), list):
        out["repos"] = [{"type": r.get("repo_type", "")[:-1], "id": r.get("repo_id"), "ok": r.get("ok"),
                         "error": r.get("error"), "files_fetched": r.get("files_fetched"),
                         "bytes_fetched": r.get("bytes_fetched"), "seconds": r.get("seconds")}
                        for r in doc["repos"] if isinstance(r, dict)
                        and visible(r.get("repo_type", ""), r.get("repo_id", ""), None)]
    return json_response(out)


async def job_models(ctx: AppContext, request: Request, identity: Identity, catalog: Catalog | None) -> Response:
    found, doc = await _job(ctx, request.path_params["job_id"])
    if found.kind != "trending":
        raise BadRequest(f"{found.id} is a {found.kind} run, not a trending refresh: only those list models")
    q = request.query_params
    page, limit = _paging(q, 20, MAX_JOBS_PAGE)
    sort = q.get("sort") or "trending"
    if sort not in JOB_SORTS:
        raise BadRequest(f"cannot sort by {sort[:40]!r}: use one of {', '.join(JOB_SORTS)}")
    low, high = int_param(q, "sizeGte", None), int_param(q, "sizeLte", None)
    visible = visibility(catalog, identity)
    text = q.get("search") or ""
    matching = None
    if text:
        matching = {(r.repo_type, r.repo_id) for r in catalog.search(text, limit=10**9)} if catalog else set()
    items = []
    for c in doc.get("considered") or []:
        key = (_plural(c.get("type")), c.get("id", ""))
        if not visible(*key, bool(c.get("gated") or c.get("private"))):
            continue
        row = catalog.get(*key) if catalog is not None and key in catalog.ids() else None
        size = row.total_size if row else c.get("size")
        if matching is not None and key not in matching and text.lower() not in key[1].lower():
            continue
        if (low is not None and (size is None or size < low)) or (high is not None and (size is None or size > high)):
            continue
        items.append({"rank": c.get("rank"), "type": c.get("type", "models")[:-1], "id": c.get("id"),
                      "selected": c.get("selected"), "reason": c.get("reason"),
                      "trendingScore": c.get("trending_score"), "downloads": c.get("downloads"),
                      "likes": c.get("likes"), "gated": c.get("gated") or False, "size": size,
                      "mirrored": row is not None})
    key_of = {"trending": lambda i: i["rank"] or 0, "downloads": lambda i: -(i["downloads"] or 0),
              "likes": lambda i: -(i["likes"] or 0), "size": lambda i: -(i["size"] or 0)}[sort]
    items.sort(key=key_of)
    chunk = items[(page - 1) * limit: page * limit]
    return json_response({"job": found.id, "items": chunk, "pagination": _pagination(page, limit, len(items))})


def next_schedule(now: datetime | None = None) -> str | None:
    """When the sync DAG runs next (HUBMIRROR_SYNC_SCHEDULE, the DAG's own setting), if it is a cron line."""
    spec = airflow_knobs().sync_cron
    if spec is None:
        return None
    try:
        from croniter import croniter

        return croniter(spec, now or datetime.now(UTC)).get_next(datetime).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ImportError, ValueError, KeyError):
        return None


def _ts(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None


async def mirror_status(ctx: AppContext, request: Request, identity: Identity, catalog: Catalog | None) -> Response:
    if catalog is None:
        return json_response([])
    visible = visibility(catalog, identity)
    upcoming = next_schedule()
    out = []
    for row in catalog.search(sort="name", limit=10**9):
        if not visible(row.repo_type, row.repo_id):
            continue
        status = "success" if row.sync_ok is not False else "failed"
        out.append({"name": f"{row.repo_type}/{row.repo_id}", "type": row.repo_type[:-1], "id": row.repo_id,
                    "status": status, "last_update": row.mirrored_at, "last_update_ts": _ts(row.mirrored_at),
                    "last_started": row.sync_started, "last_started_ts": _ts(row.sync_started),
                    "last_ended": row.sync_ended, "last_ended_ts": _ts(row.sync_ended), "next_schedule": upcoming,
                    "next_schedule_ts": _ts(upcoming), "upstream": row.upstream, "size": decimal(row.total_size),
                    "size_bytes": row.total_size, "error": row.sync_error if status == "failed" else None})
    return json_response(out)


# -- routing ----------------------------------------------------------------------------------

PREFIXES = ("/api/cache/", "/api/jobs", "/api/mirror/")


def routes(ctx: AppContext) -> list[Route]:
    def wrap(handler: Callable[..., Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                identity = ctx.auth.identify(request.headers.get("authorization"))
                if not identity.authenticated and not ctx.auth.anonymous:
                    raise AuthRequired()
                return await handler(ctx, request, identity, await ctx.catalog.get())
            except HFError as exc:
                return exc.response(head=request.method == "HEAD")

        return endpoint

    return [Route("/api/cache/stats", wrap(cache_stats), methods=["GET", "HEAD"]),
            Route("/api/cache/repos", wrap(cache_repos), methods=["GET", "HEAD"]),
            Route("/api/jobs", wrap(jobs), methods=["GET", "HEAD"]),
            Route("/api/jobs/{job_id}", wrap(job), methods=["GET", "HEAD"]),
            Route("/api/jobs/{job_id}/models", wrap(job_models), methods=["GET", "HEAD"]),
            Route("/api/mirror/status", wrap(mirror_status), methods=["GET", "HEAD"])]
