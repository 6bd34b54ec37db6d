"""The `/api/...` JSON surface: repo info, tree, paths-info, refs, commits, listings, whoami.

Shapes follow HF_API_CONTRACT.md §3-§5. Every answer names the one commit it was built from; paged
answers carry an absolute `Link` to this mirror whose URL pins that commit, so a branch moving between
pages cannot mix two commits into one listing.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from mirror_core.layout import RepoRef
from mirror_core.manifest import DirEntry, FileEntry, RefKind
from mirror_core.popularity import FIELDS
from serve.auth import Identity, whoami
from serve.context import AppContext, OpenRepo
from serve.errors import BadRequest, EntryNotFound, InvalidCredentials, PayloadTooLarge, RevisionNotFound
from serve.repo_state import ManifestView, default_sha

# Upstream fields a mirror must not pass on: they would send clients to Xet or to upstream-only features.
_DROPPED_INFO_KEYS = {"xetEnabled", "siblings", "spaces", "inference", "inferenceProviderMapping"}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, headers={"Content-Type": "application/json", **(headers or {})})


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() not in ("", "0", "false", "no")


def _expand_keys(request: Request) -> list[str]:
    items = request.query_params.multi_items()
    return [v for k, v in items if k in ("expand", "expand[]")]


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["o"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(f"invalid pagination cursor {cursor[:40]!r}: use the Link header of the previous page") \
            from exc
    if not isinstance(offset, int) or offset < 0:
        raise BadRequest(f"invalid pagination cursor {cursor[:40]!r}")
    return offset


def page(items: list[Any], offset: int, size: int, next_url: str) -> tuple[list[Any], dict[str, str]]:
    """One page and, if more follow, the absolute `Link: <...>; rel="next"` header."""
    chunk = items[offset:offset + size]
    if offset + size < len(items):
        sep = "&" if "?" in next_url else "?"
        return chunk, {"Link": f'<{next_url}{sep}cursor={encode_cursor(offset + size)}>; rel="next"'}
    return chunk, {}


async def _view(ctx: AppContext, opened: OpenRepo, revision: str | None) -> tuple[str, ManifestView]:
    assert opened.entry.refs is not None
    if revision is None:
        sha = default_sha(opened.entry.refs)
        if sha is None:
            raise RevisionNotFound("main")
    else:
        sha = await ctx.state.resolve(opened.repo, opened.entry, revision)
    view = await ctx.state.manifest(opened.repo, sha)
    if view is None:
        raise RevisionNotFound(revision or "main")
    return sha, view


def _last_commit(view: ManifestView) -> dict[str, Any]:
    for c in view.manifest.commits:
        if c.get("id") == view.sha:
            return {"id": c["id"], "title": c.get("title", ""), "date": c.get("date")}
    info = view.manifest.info
    return {"id": view.sha, "title": "", "date": info.get("lastModified")}


def path_last_commit(entry: FileEntry | DirEntry, head: dict[str, Any]) -> dict[str, Any]:
    """The last commit that touched a path, as recorded at sync time; the answered commit if none was."""
    last = entry.last_commit
    return {"id": last.id, "title": last.title, "date": last.date} if last is not None else head


def entry_json(entry: FileEntry | DirEntry, head: dict[str, Any] | None = None) -> dict[str, Any]:
    """A tree/paths-info entry; with `head` (expand=true) it carries the path's own lastCommit."""
    if isinstance(entry, DirEntry):
        out: dict[str, Any] = {"type": "directory", "oid": entry.oid, "path": entry.path}
    else:
        out = {"type": "file", "oid": entry.oid, "size": entry.size, "path": entry.path}
        if entry.lfs is not None:
            out["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": entry.lfs.pointer_size}
    if head is not None:
        out["lastCommit"] = path_last_commit(entry, head)
    return out


def _api_url(ctx: AppContext, request: Request, repo: RepoRef, *parts: str) -> str:
    quoted = "/".join(quote(p, safe="") for p in parts if p)
    return f"{ctx.base_url(request)}/api/{repo.type}/{repo.repo_id}/{quoted}"


# -- repo info -------------------------------------------------------------------------------

def hub_info(repo: RepoRef, sha: str, upstream_info: dict[str, Any], *, private: bool, gated: Any) -> dict[str, Any]:
    """The upstream's info as this mirror answers it: upstream-only keys dropped, identity fields filled in."""
    info = {k: v for k, v in upstream_info.items() if k not in _DROPPED_INFO_KEYS}
    info.update({"id": repo.repo_id, "sha": sha, "private": private, "gated": gated,
                 "disabled": bool(info.get("disabled", False))})
    info.setdefault("_id", sha[:24])
    if repo.type == "models":
        info.setdefault("modelId", repo.repo_id)
    if repo.namespace:
        info.setdefault("author", repo.namespace)
    return info


def build_info(repo: RepoRef, view: ManifestView, *, blobs: bool, private: bool, gated: Any) -> dict[str, Any]:
    info = hub_info(repo, view.sha, view.manifest.info, private=private, gated=gated)
    info.setdefault("lastModified", _last_commit(view).get("date"))
    siblings = []
    for f in sorted(view.files.values(), key=lambda e: e.path):
        sib: dict[str, Any] = {"rfilename": f.path}
        if blobs:
            sib.update({"size": f.size, "blobId": f.oid})
            if f.lfs is not None:
                sib["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": f.lfs.pointer_size}
        siblings.append(sib)
    info["siblings"] = siblings
    if blobs:
        info["usedStorage"] = view.manifest.total_size
    return info


def only(info: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    return {k: info[k] for k in ["_id", "id", *keys] if k in info}


async def repo_info(ctx: AppContext, request: Request, opened: OpenRepo) -> Response:
    sha, view = await _view(ctx, opened, opened.target.revision)
    info = build_info(opened.repo, view, blobs=_truthy(request.query_params.get("blobs")),
                      private=opened.private, gated=opened.gated)
    info.update(await popularity(ctx, opened.repo))
    expand = _expand_keys(request)
    return json_response(only(info, expand) if expand else info, headers={"X-Repo-Commit": sha})


async def popularity(ctx: AppContext, repo: RepoRef) -> dict[str, Any]:
    """The repo-level fields of the popularity snapshot (counters, tags, card, creation date) from the catalog.

    Empty while the repo is not catalogued yet. lastModified and access stay those of the answered commit.
    """
    catalog = await ctx.catalog.get()
    item = catalog.hub_item(repo.type, repo.repo_id) if catalog is not None else None
    if item is None:
        return {}
    return {k: item.info[k] for k in FIELDS if k in item.info and k not in ("lastModified", "gated", "private")}


# -- tree, paths-info --------------------------------------------------------------------------

async def tree(ctx: AppContext, request: Request, opened: OpenRepo) -> Response:
    target = opened.target
    assert target.revision is not None
    sha, view = await _view(ctx, opened, target.revision)
    path = target.path
    if path and path not in view.dirs:
        raise EntryNotFound(path, target.revision, sha)
    recursive = _truthy(request.query_params.get("recursive"))
    expand = _truthy(request.query_params.get("expand"))
    offset = decode_cursor(request.query_params.get("cursor"))
    base = ctx.base_url(request)
    # A page of a commit never changes: serialise it once (large trees made this the costly part).
    key = ("tree", opened.repo, sha, path, recursive, expand, offset, base)
    cached = ctx.state.pages.get(key)
    if cached is None:
        entries = view.walk(path) if recursive else view.children(path)
        size = ctx.settings.expand_page_size if expand else ctx.settings.page_size
        query = urlencode({"recursive": str(recursive).lower(), "expand": str(expand).lower()})
        next_url = _api_url(ctx, request, opened.repo, "tree", sha, path) + "?" + query
        chunk, headers = page(entries, offset, size, next_url)
        last = _last_commit(view) if expand else None
        body = json.dumps([entry_json(e, last) for e in chunk], separators=(",", ":"), ensure_ascii=False).encode()
        cached = (body, {"Content-Type": "application/json", "X-Repo-Commit": sha, **headers})
        ctx.state.pages.put(key, cached, len(body))
    return Response(cached[0], headers=cached[1])


async def capped_body(request: Request, limit: int) -> bytes:
    """The request body, or a 413 as soon as it is known to exceed `limit` (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(limit)
    return bytes(body)


async def _form_paths(request: Request, limit: int) -> tuple[list[str], bool]:
    body = await capped_body(request, limit)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
            paths, expand = data.get("paths", []), bool(data.get("expand", False))
        except (ValueError, AttributeError) as exc:
            raise BadRequest("paths-info body must be JSON {\"paths\": [...]} or a form with paths=") from exc
    else:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        paths = [v for k, v in pairs if k in ("paths", "paths[]")]
        expand = _truthy(next((v for k, v in pairs if k == "expand"), None))
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BadRequest("paths must be a list of strings")
    if len(paths) > 10_000:
        raise BadRequest("at most 10000 paths per paths-info request")
    return paths, expand


async def paths_info(ctx: AppContext, request: Request, opened: OpenRepo) -> Response:
    paths, expand = await _form_paths(request, ctx.settings.max_body_bytes)
    sha, view = await _view(ctx, opened, opened.target.revision)
    last = _last_commit(view) if expand else None
    out = []
    for p in paths:
        p = p.strip("/")
        entry = view.files.get(p) or view.dirs.get(p)
        if entry is not None:
            out.append(entry_json(entry, last))
    return json_response(out, headers={"X-Repo-Commit": sha})


# -- refs, commits -----------------------------------------------------------------------------

async def refs(ctx: AppContext, request: Request, opened: OpenRepo) -> Response:
    r = opened.entry.refs
    assert r is not None

    def table(kind: RefKind) -> list[dict[str, str]]:
        return [{"name": n, "ref": f"{kind.prefix}{n}", "targetCommit": s} for n, s in sorted(getattr(r, kind).items())]

    out: dict[str, Any] = {"branches": table(RefKind.BRANCHES), "converts": table(RefKind.CONVERTS),
                           "tags": table(RefKind.TAGS)}
    if _truthy(request.query_params.get("include_prs")):
        out["pullRequests"] = table(RefKind.PULL_REQUESTS)
    return json_response(out)


async def commits(ctx: AppContext, request: Request, opened: OpenRepo) -> Response:
    target = opened.target
    sha, view = await _view(ctx, opened, target.revision)
    log = list(view.manifest.commits) or [{"id": sha, **{k: v for k, v in _last_commit(view).items() if k != "id"},
                                           "message": "", "authors": []}]
    if "formatted" in _expand_keys(request):
        log = [{**c, "formatted": {"title": c.get("title", ""), "message": c.get("message", "")}} for c in log]
    next_url = _api_url(ctx, request, opened.repo, "commits", sha)
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "p")]
    if query:
        next_url += "?" + urlencode(query)
    chunk, headers = page(log, decode_cursor(request.query_params.get("cursor")), 50, next_url)
    return json_response(chunk, headers={"X-Repo-Commit": sha, **headers})


async def auth_check(ctx: AppContext, request: Request, opened: OpenRepo) -> Response:
    if opened.target.extra == "write":
        return json_response({"error": "this mirror is read-only"}, 403,
                             headers={"X-Error-Code": "ReadOnly", "X-Error-Message": "this mirror is read-only"})
    return json_response({"access": "read"})


# -- whoami --------------------------------------------------------------------------

async def whoami_v2(ctx: AppContext, request: Request, identity: Identity) -> Response:
    if not identity.authenticated:
        raise InvalidCredentials()
    return json_response(whoami(identity))
