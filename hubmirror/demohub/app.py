"""The fake hub's two origins: the Hub (API + resolve) and a separate CDN serving LFS bodies.

Routing is done by hand on the RAW request path, split on "/" before any percent-decoding, because
the clients quote revisions and tree paths fully (`refs%2Fpr%2F1`, `sub%2Fdir`): decoding first would
make a revision indistinguishable from a path (contract §4).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from urllib.parse import parse_qs, quote, unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from hubmirror.demohub import views
from hubmirror.demohub.corpus import Corpus
from hubmirror.demohub.faults import Traffic
from hubmirror.demohub.repos import Blob, Commit, Repo, RepoFile

NO_ACCESS_TOKEN = "hf_fakehub_noaccess"
DEFAULT_SERVICE_TOKEN = "hf_fakehub_service"
DEFAULT_CONFIG = {
    "cdn_ttl": 3600,
    "list_page_size": 1000,
    "tree_page_size": 1000,
    "tree_expand_page_size": 50,
    "commits_page_size": 50,
    "page_link_origin": None,  # hostile: next-page Links point at this origin instead of the hub's
    "page_link_loop": False,  # hostile: every page's next Link is the page itself
}
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
USERS = {"service": "hubmirror-service", "noaccess": "hubmirror-noaccess"}


def error(status: int, code: str | None, message: str, headers: dict | None = None) -> Response:
    hdrs = {"X-Error-Message": message, **(headers or {})}
    if code:
        hdrs["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=hdrs)


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def expand_params(request: Request) -> list[str]:
    """`expand` may be repeated, with or without brackets (`expand[]=`)."""
    q = request.query_params
    return q.getlist("expand") + q.getlist("expand[]")


def raw_path(request: Request) -> str:
    """The path as sent, before percent-decoding (see the module docstring)."""
    return request.scope.get("raw_path", request.scope["path"].encode()).decode("latin-1")


def origin(request: Request) -> str:
    """`scheme://host` of the origin the client called, for absolute URLs in headers."""
    return f"{request.url.scheme}://{request.headers.get('host', '127.0.0.1')}"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """Single `bytes=` range -> (start, end_exclusive); None to serve whole; "416" if unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return (max(0, size - n), size) if n > 0 and size > 0 else "416"
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size or end <= start:
        return "416"
    return start, min(end, size)


def body_response(request: Request, blob: Blob, headers: dict) -> Response:
    """200/206/416 with exact Content-Length, also on HEAD (Starlette would otherwise say 0)."""
    headers = {**headers, "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    span = parse_range(request.headers.get("range"), blob.size)
    if isinstance(span, str):  # "416"
        return error(
            416,
            None,
            f"Requested range not satisfiable (size {blob.size})",
            {"Content-Range": f"bytes */{blob.size}"},
        )
    status, (start, end) = (200, (0, blob.size)) if span is None else (206, span)
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(b"", status_code=status, headers=headers)
    if blob.data is not None:
        return Response(blob.data[start:end], status_code=status, headers=headers)
    return StreamingResponse(blob.chunks(start, end), status_code=status, headers=headers)


class Routes:
    """Handlers of the Hub origin and of the CDN origin, sharing one corpus and one Traffic."""

    def __init__(self, corpus: Corpus, traffic: Traffic, service_token: str, cdn_base: str) -> None:
        self.corpus = corpus
        self.traffic = traffic
        self.service_token = service_token
        self.cdn_base = cdn_base
        self.secret = hashlib.sha256(f"fakehub-cdn:{time.time_ns()}".encode()).digest()

    # ---- auth -------------------------------------------------------------------------------------
    def caller(self, request: Request) -> str | None | Response:
        auth = request.headers.get("authorization", "")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token == self.service_token:
            return "service"
        if token == NO_ACCESS_TOKEN:
            return "noaccess"
        return error(401, None, "Invalid credentials in Authorization header")

    def visible(self, repo_type: str, repo_id: str, who: str | None) -> Repo | Response:
        repo = self.corpus.get(repo_type, repo_id)
        if repo is None or (repo.private and (who != "service" or repo.service_denied)):
            return error(401 if who is None else 404, "RepoNotFound", "Repository not found")
        return repo

    @staticmethod
    def gate(repo: Repo, who: str | None) -> Response | None:
        if not repo.gated or (who == "service" and not repo.service_denied):
            return None
        if who is None:
            return error(
                401,
                "GatedRepo",
                f"Access to {repo.repo_type} {repo.repo_id} is restricted. You must "
                "have access to it and be authenticated to access it. Please log in.",
            )
        return error(
            403,
            "GatedRepo",
            f"Access to {repo.repo_type} {repo.repo_id} is restricted and you are not "
            "in the authorized list. Visit the repo page to ask for access.",
        )

    @staticmethod
    def revision(repo: Repo, rev: str) -> Commit | Response:
        commit = repo.resolve(rev)
        return commit if commit is not None else error(404, "RevisionNotFound", f"Invalid rev id: {rev}")

    # ---- dispatch ---------------------------------------------------------------------------------
    async def hub(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        segs = raw_path(request).split("/")[1:]
        if segs and segs[-1] == "":
            segs.pop()
        try:
            response = await self.dispatch(request, segs)
        except ValueError as exc:
            response = error(400, None, str(exc))
        await response(scope, receive, send)

    async def dispatch(self, request: Request, segs: list[str]) -> Response:
        if segs[:1] == ["_fakehub"]:
            from hubmirror.demohub.admin import admin

            try:
                return await admin(self, request, segs[1:])
            except (TypeError, KeyError) as exc:
                return error(400, None, f"bad admin request: {exc!r}")
        who = self.caller(request)
        if isinstance(who, Response):
            return who
        if segs[:1] == ["api"] and len(segs) >= 2:
            if segs[1] == "whoami-v2":
                return self.whoami(who)
            if segs[1] in TYPES:
                if len(segs) == 2:
                    return self.listing(request, TYPES[segs[1]], who)
                return await self.repo_api(request, TYPES[segs[1]], segs[2:], who)
        if "resolve" in segs:
            return self.resolve(request, segs, who)
        return error(404, None, "Not Found")

    def locate(
        self, repo_type: str, rest: list[str], action_at: Callable[[list[str], int], bool], who: str | None
    ) -> tuple[Repo, list[str]] | Response:
        """Split `rest` into a 2- or 1-segment repo id and the tail; prefer an id that exists."""
        options = [n for n in (2, 1) if len(rest) >= n and action_at(rest, n)]
        for n in options:
            repo_id = "/".join(unquote(s) for s in rest[:n])
            if self.corpus.get(repo_type, repo_id) is not None:
                found = self.visible(repo_type, repo_id, who)
                return found if isinstance(found, Response) else (found, rest[n:])
        return error(401 if who is None else 404, "RepoNotFound", "Repository not found")

    @staticmethod
    def take_rev(tail: list[str]) -> tuple[str, list[str]]:
        """One fully quoted revision segment; also accepts literal `refs/pr/1`, `refs/convert/x`."""
        if not tail:
            raise ValueError("missing revision in the URL")
        if unquote(tail[0]) == "refs" and len(tail) >= 3:
            return "/".join(unquote(s) for s in tail[:3]), tail[3:]
        return unquote(tail[0]), tail[1:]

    # ---- /api/{type}s/{id}/... -------------------------------------------------------------------
    async def repo_api(self, request: Request, repo_type: str, rest: list[str], who: str | None) -> Response:
        actions = ("revision", "tree", "paths-info", "refs", "commits", "auth-check")
        found = self.locate(repo_type, rest, lambda r, n: len(r) == n or r[n] in actions, who)
        if isinstance(found, Response):
            return found
        repo, tail = found
        q = request.query_params
        if not tail or tail[0] == "revision":
            rev = "/".join(unquote(s) for s in tail[1:]) if tail else "main"
            if tail and not rev:
                raise ValueError("missing revision in the URL")
            commit = self.revision(repo, rev)
            if isinstance(commit, Response):
                return commit
            obj = views.info(
                repo, commit, blobs=truthy(q.get("blobs")), security=truthy(q.get("securityStatus"))
            )
            expand = expand_params(request)
            return JSONResponse(views.only(obj, expand) if expand else obj)
        if tail[0] == "refs":
            return JSONResponse(views.refs(repo, truthy(q.get("include_prs"))))
        if tail[0] == "auth-check":
            return self.gate(repo, who) or JSONResponse({"ok": True})
        rev, path_segs = self.take_rev(tail[1:])
        commit = self.revision(repo, rev)
        if isinstance(commit, Response):
            return commit
        if tail[0] == "tree":
            return self.tree(request, repo, commit, rev, "/".join(unquote(s) for s in path_segs))
        if tail[0] == "paths-info":
            return await self.paths_info(request, repo, commit)
        return self.commits(request, repo, commit)

    def page(self, request: Request, items: list, size: int) -> Response:
        """One page of `items` with an absolute `Link: <...>; rel="next"` carrying an opaque cursor."""
        cursor = request.query_params.get("cursor")
        start = 0
        if cursor:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"invalid cursor {cursor!r}") from exc
        end = start + max(1, size)
        headers = {}
        if end < len(items) or self.traffic.config["page_link_loop"]:
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
            following = start if self.traffic.config["page_link_loop"] else end
            if following:
                params.append(("cursor", base64.urlsafe_b64encode(json.dumps({"o": following}).encode()).decode()))
            base = self.traffic.config["page_link_origin"] or origin(request)
            headers["Link"] = f'<{base}{raw_path(request)}?{urlencode(params)}>; rel="next"'
        return JSONResponse(items[start:end], headers=headers)

    def tree(self, request: Request, repo: Repo, commit: Commit, rev: str, path: str) -> Response:
        if path and path not in commit.directories:
            return error(
                404, "EntryNotFound", f'{path} does not exist on "{rev}"', {"X-Repo-Commit": commit.sha}
            )
        q = request.query_params
        expand = truthy(q.get("expand"))
        entries = views.tree(repo, commit, path, recursive=truthy(q.get("recursive")), expand=expand)
        size = self.traffic.config["tree_expand_page_size" if expand else "tree_page_size"]
        return self.page(request, entries, size)

    async def paths_info(self, request: Request, repo: Repo, commit: Commit) -> Response:
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            data = json.loads(body or b"{}")
            paths, expand = list(data.get("paths", [])), bool(data.get("expand"))
        else:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), truthy((form.get("expand") or [""])[0])
        out = []
        for path in dict.fromkeys(p.strip("/") for p in paths):
            if path in commit.files:
                out.append(views.file_entry(repo, commit, commit.files[path], expand))
            elif path in commit.directories:
                out.append(views.dir_entry(repo, commit, path, expand))
        return JSONResponse(out)

    def commits(self, request: Request, repo: Repo, commit: Commit) -> Response:
        formatted = "formatted" in expand_params(request)
        items = [views.commit_item(c, formatted) for c in repo.history(commit)]
        return self.page(request, items, self.traffic.config["commits_page_size"])

    # ---- search, whoami ---------------------------------------------------------------------------
    def listing(self, request: Request, repo_type: str, who: str | None) -> Response:
        q = request.query_params
        repos = [
            r
            for r in self.corpus.repos.values()
            if r.repo_type == repo_type
            and (not r.private or (who == "service" and not r.service_denied))
            and views.matches(
                r,
                search=q.getlist("search"),
                author=q.get("author"),
                filters=q.getlist("filter"),
                pipeline_tag=q.get("pipeline_tag"),
                gated=q.get("gated"),
            )
        ]
        repos.sort(key=lambda r: r.repo_id)
        sort = q.get("sort")
        if sort in views.SORT_KEYS:
            repos.sort(key=lambda r: views.sort_value(r, sort), reverse=True)
        expand = expand_params(request)
        if expand and (truthy(q.get("full")) or truthy(q.get("cardData")) or truthy(q.get("config"))):
            raise ValueError("expand cannot be combined with full, cardData or config")
        items = [
            views.list_item(
                r,
                full=truthy(q.get("full")),
                card=truthy(q.get("cardData")),
                config=truthy(q.get("config")),
                expand=expand,
            )
            for r in repos
        ]
        limit = q.get("limit")
        size = min(int(limit), 1000) if limit else self.traffic.config["list_page_size"]
        return self.page(request, items, size)

    @staticmethod
    def whoami(who: str | None) -> Response:
        if who is None:
            return error(401, None, "Invalid user token.")
        return JSONResponse(
            {
                "type": "user",
                "id": hashlib.sha1(who.encode()).hexdigest()[:24],
                "name": USERS[who],
                "fullname": USERS[who].title(),
                "orgs": [{"name": "hubmirror-test"}],
                "auth": {"accessToken": {"displayName": who, "role": "read"}},
            }
        )

    # ---- resolve and CDN --------------------------------------------------------------------------
    def resolve(self, request: Request, segs: list[str], who: str | None) -> Response:
        repo_type, rest = ("model", segs)
        if segs[0] in ("datasets", "spaces"):
            repo_type, rest = TYPES[segs[0]], segs[1:]
        found = self.locate(repo_type, rest, lambda r, n: len(r) > n + 1 and r[n] == "resolve", who)
        if isinstance(found, Response):
            return found
        repo, tail = found
        rev, path_segs = self.take_rev(tail[1:])
        path = "/".join(unquote(s) for s in path_segs)
        denied = self.gate(repo, who)
        if denied:
            return denied
        commit = self.revision(repo, rev)
        if isinstance(commit, Response):
            return commit
        entry = commit.files.get(path)
        if entry is None or entry.body is None:
            return error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit.sha})
        headers = {"X-Repo-Commit": commit.sha}
        if not entry.lfs:
            return body_response(request, entry.blob, {**headers, "ETag": f'"{entry.oid}"'})
        return self.redirect(request, repo, entry, headers)

    def sign(self, sha256: str, expires: int) -> str:
        return hmac.new(self.secret, f"{sha256}:{expires}".encode(), hashlib.sha256).hexdigest()

    def redirect(self, request: Request, repo: Repo, entry: RepoFile, headers: dict) -> Response:
        """302 to the CDN with the metadata on the 3xx itself (the client reads it there, §1.3)."""
        expires = int(time.time()) + int(self.traffic.config["cdn_ttl"])
        assert entry.body is not None  # resolve answered 404 for a file with no body
        sha = entry.body.sha256
        name = quote(entry.path.rsplit("/", 1)[-1])
        query = f"filename={name}&expires={expires}&signature={self.sign(sha, expires)}"
        location = f"{self.cdn_base}/lfs/{sha}?{query}"
        headers.update(
            {
                "Location": location,
                "X-Linked-Etag": f'"{entry.blob.sha256}"',
                "X-Linked-Size": str(entry.size),
                "ETag": f'"{entry.oid}"',
            }
        )
        if entry.xet:
            plural = views.API_PLURAL[repo.repo_type]
            headers["X-Xet-Hash"] = entry.xet_hash
            headers["Link"] = f'<{origin(request)}/api/{plural}/{repo.repo_id}/xet-read-token/{sha}>; rel="xet-auth"'
        body = f"Found. Redirecting to {location}".encode()
        return Response(body, status_code=302, headers=headers, media_type="text/plain")

    async def cdn(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = self.cdn_response(request)
        await response(scope, receive, send)

    def cdn_response(self, request: Request) -> Response:
        parts = request.url.path.split("/")
        if len(parts) != 3 or parts[1] != "lfs" or request.method not in ("GET", "HEAD"):
            return error(404, None, "Not Found")
        sha = parts[2]
        q = request.query_params
        expires, signature = q.get("expires", ""), q.get("signature", "")
        if not expires.isdigit() or not hmac.compare_digest(self.sign(sha, int(expires)), signature):
            return error(403, None, "SignatureDoesNotMatch: the request signature is invalid")
        if int(expires) < time.time():
            return error(403, None, "AccessDenied: Request has expired")
        blob = self.corpus.blob(sha)
        if blob is None:
            return error(404, None, "NoSuchKey")
        return body_response(request, blob, {"ETag": f'"{sha}"'})
