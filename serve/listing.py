"""`GET /api/models|datasets|spaces` (list_models, list_datasets) answered from the catalog, like the Hub.

Search (substring of the id), author, filter (every tag), pipeline_tag, gated, sort (trendingScore, downloads,
likes, lastModified, createdAt; huggingface_hub's snake-case names too) with direction, limit as the page
size, Link paging, and the item shapes the Hub gives: its default keys, `full`, `cardData`, `config`, or
exactly the `expand`ed keys. Restricted repos are left out for callers not granted them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from mirror_core.catalog import HUB_SORTS, Catalog, HubItem
from mirror_core.layout import RepoRef
from serve.api import decode_cursor, encode_cursor, hub_info, json_response, only
from serve.auth import Identity
from serve.errors import AuthRequired, BadRequest

if TYPE_CHECKING:
    from serve.context import AppContext

# Keys the Hub puts in a listing item when neither `full` nor `expand` is asked (seen on huggingface.co).
LIST_KEYS = {
    "models": ("_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
               "library_name", "createdAt", "modelId"),
    "datasets": ("_id", "id", "author", "sha", "lastModified", "private", "gated", "disabled", "likes", "downloads",
                 "tags", "trendingScore", "createdAt", "description"),
    "spaces": ("_id", "id", "likes", "trendingScore", "private", "sdk", "tags", "createdAt"),
}
SORT_ALIASES = {"trending_score": "trendingScore", "last_modified": "lastModified", "created_at": "createdAt"}
MAX_PAGE = 1000


def whole_info(item: HubItem) -> dict[str, Any]:
    """The repo's full info as the Hub lists it with `full=true`: snapshot fields, head sha, file names."""
    info = hub_info(RepoRef.parse(item.repo_id, item.repo_type), item.sha, item.info,
                    private=bool(item.info.get("private", False)), gated=item.info.get("gated", False))
    info["siblings"] = [{"rfilename": path} for path in item.siblings]
    info["usedStorage"] = item.total_size
    return info


def list_item(item: HubItem, *, full: bool, card: bool, config: bool, expand: list[str]) -> dict[str, Any]:
    whole = whole_info(item)
    if expand:
        return only(whole, expand)
    if full:
        return whole
    out = {k: whole[k] for k in LIST_KEYS[item.repo_type] if k in whole}
    if card and "cardData" in whole:
        out["cardData"] = whole["cardData"]
    if config and "config" in whole:
        out["config"] = whole["config"]
    return out


def visible_to(catalog: Catalog, identity: Identity, repo_type: str | None = None) -> Literal[True] | list[str]:
    """The `visible` argument of Catalog.hub_listing for this caller: restricted repos only where granted."""
    if identity.admin:
        return True
    return [repo_id for type_, repo_id in catalog.restricted_ids(repo_type)
            if identity.granted(RepoRef.parse(repo_id, type_))]


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() not in ("", "0", "false", "no")


def _sort(q: Any) -> tuple[str | None, bool]:
    raw = q.get("sort")
    sort = SORT_ALIASES.get(raw, raw) if raw else None
    if sort is not None and sort not in HUB_SORTS:
        names = ", ".join(f"{k} ({v})" if (v := SORT_ALIASES.get(k)) else k
                          for k in ("trending_score", "downloads", "likes", "last_modified", "created_at"))
        raise BadRequest(f"cannot sort by {raw[:40]!r}: this mirror sorts by {names}")
    direction = q.get("direction")
    if direction not in (None, "", "-1", "1"):
        raise BadRequest(f"direction must be -1 (descending, the default) or 1 (ascending), not {direction[:20]!r}")
    return sort, direction == "1"


def _page_size(q: Any, default: int) -> int:
    limit = q.get("limit")
    if limit is None or limit == "":
        return min(default, MAX_PAGE)
    if not limit.isdigit():
        raise BadRequest(f"limit must be a non-negative integer, not {limit[:20]!r}")
    return min(int(limit), MAX_PAGE)


def _gated(q: Any) -> bool | None:
    value = q.get("gated")
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise BadRequest(f"gated must be true or false, not {value[:20]!r}")
    return value.lower() == "true"


async def list_repos(ctx: AppContext, request: Request, repo_type: str, identity: Identity) -> Response:
    if not identity.authenticated and not ctx.auth.anonymous:
        raise AuthRequired()
    q = request.query_params
    sort, ascending = _sort(q)
    gated = _gated(q)
    size = _page_size(q, ctx.settings.page_size)
    expand = [v for k, v in q.multi_items() if k in ("expand", "expand[]")]
    full, card, config = _truthy(q.get("full")), _truthy(q.get("cardData")), _truthy(q.get("config"))
    if expand and (full or card or config):
        raise BadRequest("expand cannot be combined with full, cardData or config")
    offset = decode_cursor(q.get("cursor"))
    catalog = await ctx.catalog.get()
    if catalog is None or size == 0:
        headers = {} if catalog else {"X-Hubmirror-Warning": "no catalog built yet: run `hubmirror catalog`"}
        return json_response([], headers=headers)
    visible = visible_to(catalog, identity, repo_type)
    # A catalog file never changes: the same question to it always has the same answer, so keep the bytes.
    key = ("list", catalog.path, repo_type, tuple(sorted(q.multi_items())), ctx.base_url(request),
           visible if visible is True else tuple(visible))
    cached = ctx.state.pages.get(key)
    if cached is None:
        cached = _answer(ctx, request, catalog, repo_type, q, visible, size, offset, sort, ascending, gated, expand,
                         full, card, config)
        ctx.state.pages.put(key, cached, len(cached[0]))
    return Response(cached[0], headers=cached[1])


def _answer(ctx: AppContext, request: Request, catalog: Catalog, repo_type: str, q: Any, visible: bool | list[str],
            size: int, offset: int, sort: str | None, ascending: bool, gated: bool | None, expand: list[str],
            full: bool, card: bool, config: bool) -> tuple[bytes, dict[str, str]]:
    items = catalog.hub_listing(
        repo_type, search=[s for s in q.getlist("search") if s], author=q.get("author") or None,
        tags=[f for f in q.getlist("filter") if f], pipeline=q.get("pipeline_tag") or None, gated=gated,
        sort=sort, ascending=ascending, visible=visible, limit=size + 1, offset=offset)
    headers: dict[str, str] = {"Content-Type": "application/json"}
    if len(items) > size:
        items = items[:size]
        query = [(k, v) for k, v in q.multi_items() if k != "cursor"]
        query.append(("cursor", encode_cursor(offset + size)))
        headers["Link"] = f'<{ctx.base_url(request)}/api/{repo_type}?{urlencode(query)}>; rel="next"'
    body = json.dumps([list_item(i, full=full, card=card, config=config, expand=expand) for i in items],
                      separators=(",", ":"), ensure_ascii=False).encode()
    return body, headers
