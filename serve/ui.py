"""The web UI: server-rendered pages (Jinja2 templates in serve/templates, no JavaScript, no build step).

Search across ids and README text with filters and sorting (from the catalog), a repo page (README rendered,
files as download links, revisions, copy-paste usage), a status page and a trending page. Access is the API's:
the same identities (a bearer header, or the mirror token a browser signed in with, kept in an HttpOnly
cookie), `ANONYMOUS=false` honoured, restricted repos only for granted identities. Object store trouble is a
503 page, never a bare 500.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from rich.filesize import decimal
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from mirror_core.history import read_jobs
from mirror_core.layout import TRENDING_LATEST, URL_PREFIXES, RepoRef, blob_key
from serve import mirror_api
from serve.auth import Identity
from serve.errors import AuthRequired, BadRequest, HFError, RepoNotFound, RouteNotFound
from serve.listing import visible_to
from serve.repo_state import default_sha, repo_ref

if TYPE_CHECKING:
    from serve.context import AppContext

COOKIE = "hubmirror_token"
PAGE_SIZE = 25  # repos per index page unless `limit` (at most 100) says otherwise
FILES_SHOWN = 1000
UI_SORTS = (("trending", "trending"), ("downloads", "downloads"), ("likes", "likes"), ("updated", "recently updated"),
            ("relevance", "relevance"), ("size", "size"), ("name", "name"))
_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.DOTALL)
_templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(["html"]))
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_readme(text: str) -> str:
    """README markdown as HTML: front matter dropped, raw HTML not passed through (escaped)."""
    return _markdown.render(_FRONT_MATTER.sub("", text, count=1))


def _mb(value: str | None, name: str) -> int | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"{name} must be a number of megabytes, not {value[:20]!r}") from None
    if number < 0 or not math.isfinite(number):
        raise BadRequest(f"{name} must be 0 or more megabytes")
    return int(number * 1_000_000)


def repo_url(type_: str, repo_id: str) -> str:
    return f"/ui/{RepoRef.parse(repo_id, type_).type}/{repo_id}"


def routes(ctx: AppContext) -> list[Route]:
    from serve.context import restriction

    def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        who = getattr(request.state, "identity", None)
        html = _templates.get_template(template).render(who=who.name if who else None, base=ctx.base_url(request),
                                                        **values)
        return HTMLResponse(html, status_code=status)

    def message(request: Request, status: int, heading: str, text: str, login: bool = False) -> HTMLResponse:
        back = request.query_params.get("next") if request.url.path == "/ui/login" else request.url.path
        return page(request, "message.html", status, title=heading, heading=heading, message=text, login=login,
                    next_url=back or "/")

    def identify(request: Request) -> Identity:
        header = request.headers.get("authorization")
        cookie = request.cookies.get(COOKIE)
        identity = ctx.auth.identify(header or (f"Bearer {cookie}" if cookie else None))
        if not identity.authenticated and not ctx.auth.anonymous:
            raise AuthRequired()
        request.state.identity = identity
        return identity

    def handler(fn: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request, identify(request))
            except AuthRequired as exc:
                return message(request, 401, "Sign in", f"{exc.message}.", login=True)
            except RepoNotFound:
                return message(request, 404, "Repository not mirrored",
                               "This repository is not on this mirror, or your token has not been granted it.")
            except HFError as exc:
                heading = "Mirror temporarily unavailable" if exc.status == 503 else "Cannot show this page"
                response = message(request, exc.status, heading, exc.message)
                response.headers.update({k: v for k, v in exc.headers.items() if k.lower() == "retry-after"})
                return response

        return endpoint

    async def index(request: Request, who: Identity) -> Response:
        q = request.query_params
        text = (q.get("q") or "").strip()
        sort = q.get("sort") or ("relevance" if text else "trending")
        if sort not in dict(UI_SORTS):
            raise BadRequest(f"cannot sort by {sort[:40]!r}")
        type_ = q.get("type") or None
        if type_ not in (None, "model", "dataset", "space"):
            raise BadRequest(f"type must be model, dataset or space, not {type_[:20]!r}")
        tag = (q.get("tag") or "").strip()
        page_no = mirror_api.int_param(q, "page", 1, 1) or 1
        size = mirror_api.int_param(q, "limit", PAGE_SIZE, 1, 100) or PAGE_SIZE
        gated = mirror_api.gated_param(q)
        filters = {"type": type_, "tags": [tag] if tag else [], "gated": gated,
                   "min_size": _mb(q.get("size_min"), "min size"), "max_size": _mb(q.get("size_max"), "max size")}
        catalog = await ctx.catalog.get()
        rows, total = [], 0
        if catalog is not None:
            filters["restricted"] = visible_to(catalog, who)
            total = catalog.count(text or None, **filters)
            found = catalog.search(text or None, sort=sort, limit=size, offset=(page_no - 1) * size, **filters)
            rows = [{"id": r.repo_id, "type": r.repo_type[:-1], "url": repo_url(r.repo_type, r.repo_id),
                     "size": decimal(r.total_size), "downloads": r.downloads, "likes": r.likes, "tags": r.tags[:6],
                     "gated": bool(r.gated), "synced": r.mirrored_at[:16].replace("T", " "), "snippet": r.snippet}
                    for r in found]
        pages = max(1, math.ceil(total / size))
        keep = [(k, v) for k, v in q.multi_items() if k != "page" and v]

        def link(n: int) -> str:
            return "/?" + urlencode([*keep, ("page", str(n))])

        return page(request, "index.html", title="Repositories", rows=rows, total=total, q=text, type=type_ or "",
                    tag=tag, size_min=q.get("size_min") or "", size_max=q.get("size_max") or "",
                    gated=q.get("gated") or "", sort=sort, sorts=UI_SORTS, page=page_no, pages=pages,
                    prev_url=link(page_no - 1) if page_no > 1 else None,
                    next_url=link(page_no + 1) if page_no < pages else None, catalog_missing=catalog is None)

    async def repo_page(request: Request, who: Identity) -> Response:
        repo = repo_ref(request.path_params["repo_id"], request.path_params["type"])
        entry = await ctx.state.refs_entry(repo) if repo else None
        if repo is None or entry is None or entry.refs is None:
            raise RepoNotFound("", authenticated=who.authenticated)
        private, gated = await restriction(ctx, repo, entry)
        ctx.auth.check_repo(who, repo, private, gated, body=False)
        refs = entry.refs
        revision = request.query_params.get("revision")
        sha = await ctx.state.resolve(repo, entry, revision) if revision else default_sha(refs)
        view = await ctx.state.manifest(repo, sha) if sha else None
        if view is None:
            raise RouteNotFound(f"revision {revision or 'main'} has no published commit here")
        unmirrored = await ctx.state.unmirrored(repo, view)
        prefix = f"/{URL_PREFIXES[repo.type]}{repo.repo_id}/resolve/{sha}/"
        files = [{"path": f.path, "size": decimal(f.size), "lfs": f.lfs is not None,
                  "url": None if f.path in unmirrored else prefix + quote(f.path)}
                 for f in sorted(view.files.values(), key=lambda f: f.path)]
        catalog = await ctx.catalog.get()
        row = catalog.get(repo.type, repo.repo_id) if catalog is not None else None
        readme = (catalog.readme(repo.type, repo.repo_id)
                  if catalog is not None and row is not None and row.sha == sha else None)
        if readme is None and "README.md" in view.files and view.files["README.md"].size <= 512 * 1024:
            data = await ctx.state.run(ctx.store.get_bytes, blob_key(view.files["README.md"].sha256))
            readme = data.decode("utf-8", "replace") if data else None
        ref_rows = [(kind, name, commit) for kind, table in (("branch", refs.branches), ("tag", refs.tags),
                                                             ("convert", refs.converts), ("pr", refs.pull_requests))
                    for name, commit in sorted(table.items())]
        kind = repo.singular_type
        return page(request, "repo.html", title=repo.repo_id, repo_id=repo.repo_id, type=kind, gated=gated,
                    sha=sha, revision=revision or "main", total_size=decimal(view.manifest.total_size),
                    file_count=len(files), last_sync=refs.updated_at.strftime("%Y-%m-%d %H:%M UTC"),
                    downloads=row.downloads if row else None, likes=row.likes if row else None,
                    cli_type="" if kind == "model" else f" --repo-type {kind}",
                    py_type="" if kind == "model" else f', repo_type="{kind}"',
                    readme_html=render_readme(readme) if readme else None, files=files[:FILES_SHOWN],
                    more_files=max(0, len(files) - FILES_SHOWN), refs=ref_rows)

    async def status_page(request: Request, who: Identity) -> Response:
        catalog = await ctx.catalog.get()
        visible = mirror_api.visibility(catalog, who)
        repos = []
        if catalog is not None:
            for r in catalog.search(sort="name", limit=10**9):
                if visible(r.repo_type, r.repo_id):
                    repos.append({"name": f"{r.repo_type[:-1]}:{r.repo_id}", "url": repo_url(r.repo_type, r.repo_id),
                                  "status": "failed" if r.sync_ok is False else "success",
                                  "last_update": r.mirrored_at, "last_ended": r.sync_ended,
                                  "size": decimal(r.total_size), "error": r.sync_error if r.sync_ok is False else None})
        jobs = (await mirror_api.all_jobs(ctx))[:50]
        docs = await ctx.state.run(read_jobs, ctx.store, jobs)
        hidden = mirror_api.hidden_ids(catalog, who)
        summaries = [mirror_api.job_summary(j, docs[j.id], visible, hidden) for j in jobs if j.id in docs]
        return page(request, "status.html", title="Status", repos=repos, jobs_read=len(jobs),
                    failures=[s for s in summaries if s["status"] == "failed"],
                    next_schedule=mirror_api.next_schedule(),
                    built_at=catalog.meta().get("built_at") if catalog is not None else None)

    async def trending_page(request: Request, who: Identity) -> Response:
        snapshot = await ctx.state.run(ctx.store.get_json, TRENDING_LATEST)
        catalog = await ctx.catalog.get()
        visible = mirror_api.visibility(catalog, who)
        entries = []
        for c in (snapshot or {}).get("considered") or []:
            type_ = c.get("type", "models")
            if not visible(type_, c.get("id", ""), bool(c.get("gated") or c.get("private"))):
                continue
            mirrored = catalog is not None and catalog.get(type_, c["id"]) is not None
            entries.append({"rank": c.get("rank"), "id": c["id"], "type": type_[:-1], "gated": bool(c.get("gated")),
                            "score": c.get("trending_score"), "downloads": c.get("downloads"),
                            "likes": c.get("likes"), "selected": c.get("selected"), "reason": c.get("reason"),
                            "url": repo_url(type_, c["id"]) if mirrored else None})
        return page(request, "trending.html", title="Trending", snapshot=snapshot, entries=entries,
                    selected=sum(1 for e in entries if e["selected"]))

    async def login_form(request: Request) -> Response:
        request.state.identity = None
        return message(request, 200, "Sign in", "Paste a mirror token (the one you use as HF_TOKEN).", login=True)

    async def login(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("token") or "").strip()
        request.state.identity = None
        try:
            identity = ctx.auth.identify(f"Bearer {token}") if token else None
        except HFError:
            identity = None
        if identity is None:
            return message(request, 401, "Sign in", "That token is not known to this mirror.", login=True)
        target = str(form.get("next") or "/")
        local = target.startswith("/") and not target.startswith("//") and "\\" not in target  # no open redirect
        response = RedirectResponse(target if local else "/", 303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                            secure=ctx.base_url(request).startswith("https://"))
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/", 303)
        response.delete_cookie(COOKIE)
        return response

    return [Route("/", handler(index), methods=["GET", "HEAD"]),
            Route("/ui/status", handler(status_page), methods=["GET", "HEAD"]),
            Route("/ui/trending", handler(trending_page), methods=["GET", "HEAD"]),
            Route("/ui/login", login_form, methods=["GET"]),
            Route("/ui/login", login, methods=["POST"]),
            Route("/ui/logout", logout, methods=["GET", "POST"]),
            Route("/ui/{type}/{repo_id:path}", handler(repo_page), methods=["GET", "HEAD"])]
