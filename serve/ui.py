"""A small web UI: the mirrored repos with a search box, and a repo page with copy-paste usage.

Server-rendered HTML with escaping only (no JS, no templates), from the same cached state as the API,
so browsing costs nothing extra and restricted repos stay hidden from those without a grant.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from rich.filesize import decimal
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from serve.errors import HFError
from serve.repo_state import default_sha, repo_ref

if TYPE_CHECKING:
    from serve.context import AppContext

_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd}
pre{background:#f4f4f4;padding:.8rem;overflow-x:auto}input{padding:.3rem;width:20rem}a{color:#0b5cad}"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
                        f"<style>{_STYLE}</style></head><body>{body}</body></html>")



def routes(ctx: AppContext) -> list[Route]:
    from serve.context import restriction

    def identity(request: Request):
        return ctx.auth.identify(request.headers.get("authorization"))

    async def index(request: Request) -> Response:
        try:
            who = identity(request)
        except HFError as exc:
            return exc.response()
        query = (request.query_params.get("q") or "").strip()
        rows: list[tuple[Any, ...]] = []
        for repo in await ctx.state.mirrored_repos():
            if query and query.lower() not in repo.repo_id.lower():
                continue
            entry = await ctx.state.refs_entry(repo)
            if entry.refs is None or (sha := default_sha(entry.refs)) is None:
                continue
            private, gated = await restriction(ctx, repo, entry)
            if private and not who.granted(repo):
                continue
            view = await ctx.state.manifest(repo, sha)
            if view is None:
                continue
            rows.append((repo, sha, view.manifest.total_size, len(view.files), gated,
                         entry.refs.updated_at.strftime("%Y-%m-%d %H:%M")))
        table = "".join(
            f"<tr><td><a href='/ui/{r.type}/{escape(r.repo_id)}'>{escape(r.repo_id)}</a></td><td>{r.singular_type}</td>"
            f"<td>{decimal(size)}</td><td>{files}</td><td>{'gated' if gated else ''}</td><td>{updated}</td></tr>"
            for r, _sha, size, files, gated, updated in rows)
        body = (f"<h1>Hugging Face mirror</h1><form><input name='q' value='{escape(query)}' "
                f"placeholder='search repos'> <button>Search</button></form>"
                f"<p>{len(rows)} repos. Use it with <code>HF_ENDPOINT={escape(ctx.base_url(request))}</code>.</p>"
                f"<table><tr><th>repo</th><th>type</th><th>size</th><th>files</th><th></th><th>synced</th></tr>"
                f"{table}</table>")
        return _page("hubmirror", body)

    async def repo_page(request: Request) -> Response:
        repo = repo_ref(request.path_params["repo_id"], request.path_params["type"])
        try:
            who = identity(request)
            entry = await ctx.state.refs_entry(repo) if repo else None
            if repo is None or entry is None or entry.refs is None:
                return _page("not found", "<h1>Repository not mirrored</h1><p><a href='/'>back</a></p>")
            private, gated = await restriction(ctx, repo, entry)
            if private and not who.granted(repo):
                return _page("not found", "<h1>Repository not mirrored</h1><p><a href='/'>back</a></p>")
        except HFError as exc:
            return exc.response()
        base = ctx.base_url(request)
        flag = "" if repo.type == "models" else f" --repo-type {repo.singular_type}"
        refs = entry.refs
        ref_rows = "".join(f"<tr><td>{escape(kind)}</td><td>{escape(name)}</td><td><code>{sha}</code></td></tr>"
                           for kind, table in (("branch", refs.branches), ("tag", refs.tags),
                                               ("convert", refs.converts), ("pr", refs.pull_requests))
                           for name, sha in sorted(table.items()))
        sha = default_sha(refs)
        view = await ctx.state.manifest(repo, sha) if sha else None
        files = "".join(f"<tr><td>{escape(f.path)}</td><td>{decimal(f.size)}</td><td>{'LFS' if f.lfs else ''}</td></tr>"
                        for f in sorted(view.files.values(), key=lambda f: f.path)[:500]) if view else ""
        python_type = "" if repo.type == "models" else f", repo_type=\"{repo.singular_type}\""
        body = (f"<p><a href='/'>all repos</a></p><h1>{escape(repo.repo_id)}</h1>"
                f"<p>{repo.singular_type}{' &middot; gated upstream' if gated else ''}</p>"
                f"<h2>Use it</h2><pre>HF_ENDPOINT={escape(base)} hf download {escape(repo.repo_id)}{flag}</pre>"
                f"<pre>import os\nos.environ[\"HF_ENDPOINT\"] = \"{escape(base)}\"\n"
                f"from huggingface_hub import snapshot_download\n"
                f"snapshot_download(\"{escape(repo.repo_id)}\"{escape(python_type)})</pre>"
                f"<h2>Revisions</h2><table>{ref_rows}</table>"
                f"<h2>Files</h2><table>{files}</table>")
        return _page(repo.repo_id, body)

    return [Route("/", index, methods=["GET", "HEAD"]),
            Route("/ui/{type}/{repo_id:path}", repo_page, methods=["GET", "HEAD"])]
