"""The read service: `create_app()` builds the Starlette app (run by `hubmirror serve` through uvicorn).

HF URLs are dispatched from the raw path (serve.paths) because revisions and tree paths arrive
%2F-quoted; the fixed routes (health, metrics, UI) use Starlette's router. Every failure becomes an
HF-style answer with `X-Error-Code`; an unexpected one is logged and answered 500 without internals.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from serve import api, listing, metrics, mirror_api, ui
from serve.access_log import AccessLog
from serve.auth import Auth
from serve.config import ServeSettings, load_serve_settings
from serve.context import AppContext, open_repo
from serve.errors import BadRequest, HFError, InternalError, MethodNotAllowed, RouteNotFound
from serve.health import healthz, readyz
from serve.ondemand import AirflowTrigger
from serve.paths import parse
from serve.repo_state import RepoState
from serve.resolve import BlobStream, resolve_file

log = logging.getLogger("hubmirror.serve")

# action -> (handler, methods, whether it reads file bodies)
REPO_ROUTES = {
    "resolve": (resolve_file, ("GET", "HEAD"), True),
    "info": (api.repo_info, ("GET", "HEAD"), False),
    "tree": (api.tree, ("GET", "HEAD"), False),
    "paths-info": (api.paths_info, ("POST",), False),
    "refs": (api.refs, ("GET", "HEAD"), False),
    "commits": (api.commits, ("GET", "HEAD"), False),
    "auth-check": (api.auth_check, ("GET", "HEAD"), True),
}


async def _handle(ctx: AppContext, request: Request) -> tuple[Any, str]:
    host = request.headers.get("host", "")
    if host.startswith("datasets-server."):
        # The datasets viewer probe (HF_API_CONTRACT.md §9): answer at once, the client swallows errors.
        raise RouteNotFound("the datasets viewer is not mirrored")
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    kind, candidates = parse(raw.decode("latin-1"))
    if kind in ("resolve", "api-repo"):
        candidates = [c for c in candidates if c.action in REPO_ROUTES]
        if not candidates:
            raise RouteNotFound(f"{request.url.path} is not served by this mirror")
        identity = ctx.auth.identify(request.headers.get("authorization"))
        opened = await open_repo(ctx, candidates, identity, body=lambda t: REPO_ROUTES[t.action][2])
        handler, methods, _ = REPO_ROUTES[opened.target.action]
        if opened.target.action == "resolve":
            ctx.requested[opened.repo] += 1  # /api/cache/stats "most requested" (this replica's count)
        if request.method not in methods:
            raise MethodNotAllowed(f"{request.method} is not allowed here; use {' or '.join(methods)}")
        response = await handler(ctx, request, opened)
        if isinstance(response, BlobStream):
            await response.prepare()
        return response, opened.target.action
    if kind == "list":
        identity = ctx.auth.identify(request.headers.get("authorization"))
        return await listing.list_repos(ctx, request, candidates[0].repo_type, identity), "list"
    if kind == "api:whoami-v2":
        identity = ctx.auth.identify(request.headers.get("authorization"))
        return await api.whoami_v2(ctx, request, identity), "whoami"
    raise RouteNotFound(f"{request.url.path} is not served by this mirror")


def _dispatcher(ctx: AppContext) -> Callable[[Request], Awaitable[Any]]:
    async def dispatch(request: Request) -> Any:
        started = time.perf_counter()
        route = "other"
        try:
            response, route = await _handle(ctx, request)
        except HFError as exc:
            response = exc.response(head=request.method == "HEAD")
        except UnicodeDecodeError:
            response = BadRequest("the URL is not valid UTF-8").response()
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, request.url.path)
            response = InternalError("internal error; the mirror's log has the details").response()
        method = request.method if request.method in _METHODS else "other"  # clients choose it: bound the labels
        metrics.observe(route, method, response.status_code, time.perf_counter() - started)
        return response

    return dispatch


_FIXED_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MirrorApp(Starlette):
    """Starlette, with HF URLs sent straight to the dispatcher.

    The HF surface does its own routing (raw path) and error handling, so it skips Starlette's router
    and exception middlewares: on the HEAD /resolve path that is most of the per-request cost.
    """

    def __init__(self, ctx: AppContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state.ctx = ctx
        self._dispatch = _dispatcher(ctx)
        self.access_log = AccessLog() if ctx.settings.access_log else None
        self._http = self.access_log.wrap(self._answer) if self.access_log else self._answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path not in _FIXED_PATHS and not path.startswith(("/ui/", *mirror_api.PREFIXES)):
            scope["app"] = self
            response = await self._dispatch(Request(scope, receive))
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _configure_logging() -> None:
    logger = logging.getLogger("hubmirror")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def create_app(settings: ServeSettings | None = None) -> Starlette:
    """The ASGI app; settings default to the environment (HUBMIRROR_S3_*, HUBMIRROR_SERVE_*)."""
    from mirror_core.store import Store

    _configure_logging()
    settings = settings or load_serve_settings()
    store = Store(settings.s3, max_connections=64, timeout=settings.s3_timeout(), retries=settings.s3_retry())
    state = RepoState(store, refs_ttl=settings.refs_ttl, missing_ttl=settings.missing_ttl,
                      list_ttl=settings.list_ttl, manifest_cache_files=settings.manifest_cache_files,
                      page_cache_bytes=settings.page_cache_bytes, repo_cache_entries=settings.repo_cache_entries)
    ctx = AppContext(settings, store, state, Auth(settings.all_tokens(), settings.anonymous),
                     AirflowTrigger(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await ctx.trigger.aclose()
        ctx.catalog.close()
        metrics.TALLY.apply()  # a stopping worker's last second of counts still reaches the files
        if isinstance(app, MirrorApp) and app.access_log is not None:
            app.access_log.flush()

    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics.metrics_endpoint, methods=["GET"]),
        *ui.routes(ctx),
        *mirror_api.routes(ctx),
    ]
    return MirrorApp(ctx, routes=routes, lifespan=lifespan,
                     exception_handlers={404: _http_error, 405: _http_error})


async def _http_error(request: Request, exc: Exception) -> Any:
    """Starlette's own 404/405 (fixed routes) with an `X-Error-Code`, like every other 4xx here."""
    status = getattr(exc, "status_code", 404)
    error = RouteNotFound(f"{request.url.path} is not served by this mirror") if status == 404 else \
        MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    return error.response(head=request.method == "HEAD")
