"""The upstream hub's metadata API, on huggingface_hub's HfApi and HTTP session, with upstream manners.

Every call goes through the retry policy and status mapping of retry.py (shared with body downloads):
429 waits for `Retry-After`, 5xx and network errors back off, auth errors are raised at once. Repo info, refs,
trees and commit logs are kept as the raw JSON the upstream sent, because manifests store them for
serve to answer HF clients with the same fields.

Every request is made here (not through HfApi's helpers, which follow redirects and next-page
`Link`s to any host with the token): redirects and `Link`s are followed only to the upstream's
origin or `transfer.allowed_redirect_hosts` (without the token there), and listings are capped at
`transfer.max_pages` pages / `transfer.max_entries` entries and stop at the first `Link` seen twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote, urljoin

import httpx
import httpx2
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from mirror_core.errors import GatedRepoError, UpstreamAuthError, UpstreamError, UpstreamNotFoundError
from mirror_core.layout import URL_PREFIXES, RepoRef, RepoType
from mirror_core.manifest import REF_KINDS
from mirror_core.origins import check_hop, same_origin
from mirror_core.retry import RetryPolicy, Transient, status_error
from mirror_core.settings import Settings

T = TypeVar("T")
Params = dict[str, Any] | list[tuple[str, Any]] | None  # query parameters; a list where keys repeat (expand)
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_REF_FIELDS = {kind: "pullRequests" if kind == "pull_requests" else kind for kind in REF_KINDS}  # the Hub's JSON names
NETWORK_ERRORS = (httpx2.TransportError, httpx.TransportError, ConnectionError, TimeoutError)


@dataclass(frozen=True)
class UpstreamFile:
    """A file entry of the upstream tree. `oid` is the git blob id (of the pointer, for LFS)."""

    path: str
    size: int
    oid: str
    lfs_sha256: str | None = None
    pointer_size: int | None = None

    @property
    def sha256(self) -> str | None:
        """The content sha256 when the upstream publishes it (LFS), else None until we hash it."""
        return self.lfs_sha256

    @property
    def lfs(self) -> bool:
        return self.lfs_sha256 is not None


@dataclass(frozen=True)
class UpstreamDir:
    path: str
    oid: str


class Upstream:
    """One upstream hub, one service token (`settings.upstream_token`), polite retries."""

    def __init__(self, settings: Settings, *, policy: RetryPolicy | None = None) -> None:
        self.endpoint = settings.upstream_url
        self.token = settings.token
        self.timeout = settings.transfer.timeout
        self.policy = policy or RetryPolicy.from_settings(settings)
        self.allowed = list(settings.transfer.allowed_redirect_hosts)
        self.max_pages = settings.transfer.max_pages
        self.max_entries = settings.transfer.max_entries
        self._call_count = 0
        self._lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def calls(self) -> int:
        """Metadata HTTP requests made so far (pages and retries included)."""
        return self._call_count

    def _count(self) -> None:
        with self._lock:
            self._call_count += 1

    def headers(self, url: str | None = None) -> dict[str, str]:
        """HF client headers; the token only for the upstream's own origin (token=False: never one saved
        on this machine, the mirror uses only its own)."""
        on_origin = url is None or same_origin(url, self.endpoint)
        return build_hf_headers(token=(self.token if on_origin else None) or False, library_name="hubmirror")

    def api_url(self, repo: RepoRef, *parts: str) -> str:
        return "/".join([f"{self.endpoint}/api/{repo.type}/{repo.repo_id}", *parts])

    def resolve_url(self, repo: RepoRef, revision: str, path: str) -> str:
        return (f"{self.endpoint}/{URL_PREFIXES[repo.type]}{repo.repo_id}/resolve/"
                f"{quote(revision, safe='')}/{quote(path)}")

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one upstream request with the retry policy; map failures to mirror_core errors."""
        def attempt() -> T:
            self._count()
            try:
                return fn()
            except HfHubHTTPError as exc:
                response = exc.response
                raise status_error(what, response.status_code if response is not None else None,
                                   response.headers if response is not None else None, _message(exc)) from exc
            except OfflineModeIsEnabled as exc:
                raise UpstreamError(f"{what}: huggingface_hub is in offline mode; unset HF_HUB_OFFLINE to sync") \
                    from exc
            except NETWORK_ERRORS as exc:
                raise Transient(f"{what}: upstream {self.endpoint} unreachable ({type(exc).__name__}: {exc})") \
                    from exc

        return self.policy.run(what, attempt)

    def _get(self, what: str, url: str, params: Params = None) -> httpx2.Response:
        """GET with redirects followed by hand, only where the upstream may send us (token only on its origin)."""
        for _ in range(MAX_REDIRECTS + 1):
            response = get_session().get(url, params=params, headers=self.headers(url), timeout=self.timeout,
                                         follow_redirects=False)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                hf_raise_for_status(response)
                return response
            target = urljoin(str(response.url), location)
            check_hop(what, str(response.url), target, self.endpoint, self.allowed)
            url, params = target, None
        raise UpstreamError(f"{what}: more than {MAX_REDIRECTS} redirects")

    def get_json(self, what: str, url: str, params: Params = None) -> Any:
        return self.call(what, lambda: self._get(what, url, params).json())

    def get_pages(self, what: str, url: str, params: Params = None) -> Iterator[Any]:
        """Items of a Link-paged list; each page is retried on its own. A hostile or broken upstream cannot
        make it loop, run unbounded, or send the token off its origin (see the module docstring)."""
        seen: set[str] = set()
        entries = 0
        next_url: str | None = url
        while next_url is not None:
            if len(seen) >= self.max_pages:
                raise UpstreamError(f"{what}: the upstream listing has more than {self.max_pages} pages; raise "
                                    "transfer.max_pages if that is expected, or leave the repo out")
            page_url, page_params = next_url, (params if not seen else None)
            response = self.call(what, partial(self._get, what, page_url, page_params))
            seen.add(str(httpx2.URL(page_url, params=page_params) if page_params else httpx2.URL(page_url)))
            items = response.json()
            if not isinstance(items, list):
                raise UpstreamError(f"{what}: the upstream answered {str(items)[:200]!r}, not a list")
            entries += len(items)
            if entries > self.max_entries:
                raise UpstreamError(f"{what}: the upstream listing has more than {self.max_entries} entries; raise "
                                    "transfer.max_entries if that is expected, or leave the repo out")
            yield from items
            next_url = response.links.get("next", {}).get("url")
            if next_url is None:
                return
            next_url = urljoin(str(response.url), next_url)
            check_hop(what, str(response.url), next_url, self.endpoint, self.allowed, via="pointed its next-page Link")
            if str(httpx2.URL(next_url)) in seen:
                raise UpstreamError(f"{what}: the upstream's pagination loops (next-page Link {next_url} was already "
                                    "fetched); the upstream is broken or hostile, nothing was published")

    # -- calls ---------------------------------------------------------------------------------

    def refs(self, repo: RepoRef, *, include_prs: bool = False) -> dict[str, dict[str, str]]:
        """Every ref of the repo: {"branches"|"tags"|"converts"|"pull_requests": {name: sha}} (one call)."""
        what = f"list refs of {repo}"
        refs = self.get_json(what, self.api_url(repo, "refs"), {"include_prs": 1} if include_prs else None)
        try:
            return {kind: {item["name"]: item["targetCommit"] for item in refs.get(field) or []}
                    for kind, field in _REF_FIELDS.items()}
        except (AttributeError, KeyError, TypeError) as exc:
            raise UpstreamError(f"{what}: malformed answer {str(refs)[:200]!r} ({exc!r})") from None

    def repo_info(self, repo: RepoRef, revision: str | None = None, *, files_metadata: bool = False) -> dict:
        """Repo info as raw JSON (as HF clients would read it), at a revision if given."""
        url = self.api_url(repo) if revision is None else self.api_url(repo, "revision", quote(revision, safe=""))
        info = self.get_json(f"repo info of {repo}@{revision or 'default'}", url,
                             {"blobs": "true"} if files_metadata else None)
        if not isinstance(info, dict) or "id" not in info:
            raise UpstreamError(f"repo info of {repo}: the upstream answered {str(info)[:200]!r}, not a repo")
        return info

    def tree(self, repo: RepoRef, sha: str) -> tuple[list[UpstreamFile], list[UpstreamDir]]:
        """The full recursive tree of a commit (paged by the upstream)."""
        files: list[UpstreamFile] = []
        dirs: list[UpstreamDir] = []
        url = self.api_url(repo, "tree", quote(sha, safe=""))
        what = f"tree of {repo}@{sha[:12]}"
        for entry in self.get_pages(what, url, {"recursive": "true", "expand": "false"}):
            try:
                if entry.get("type") == "directory":
                    dirs.append(UpstreamDir(entry["path"], entry["oid"]))
                elif entry.get("type") == "file":
                    lfs = entry.get("lfs") or None
                    files.append(UpstreamFile(
                        path=entry["path"], size=int(entry["size"]), oid=entry["oid"],
                        lfs_sha256=lfs["oid"] if lfs else None,
                        pointer_size=int(lfs.get("pointerSize", lfs.get("pointer_size", 0))) if lfs else None,
                    ))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise UpstreamError(f"{what}: malformed entry {str(entry)[:200]!r} ({exc!r})") from None
        return files, dirs

    def last_commits(self, repo: RepoRef, sha: str, paths: list[str], batch: int = 50) -> dict[str, dict]:
        """path -> {"id","title","date"} of the newest commit touching it, from the upstream's expanded
        paths-info (`expand=true`), `batch` paths per call (the Hub's page size for expanded listings)."""
        url = self.api_url(repo, "paths-info", quote(sha, safe=""))
        found: dict[str, dict] = {}
        for start in range(0, len(paths), batch):
            chunk = paths[start:start + batch]
            what = f"paths-info of {repo}@{sha[:12]} ({len(chunk)} paths)"

            def post(chunk: list[str] = chunk) -> Any:
                response = get_session().post(url, data={"paths": chunk, "expand": "true"}, headers=self.headers(url),
                                              timeout=self.timeout, follow_redirects=False)  # no token off origin
                hf_raise_for_status(response)
                return response.json()

            for entry in self.call(what, post):
                last = entry.get("lastCommit") if isinstance(entry, dict) else None
                if isinstance(last, dict) and isinstance(last.get("id"), str):
                    found[entry["path"]] = {k: last[k] for k in ("id", "title", "date") if k in last}
        return found

    def commits(self, repo: RepoRef, sha: str) -> list[dict]:
        """The commit log reachable from a commit, newest first, as the upstream's JSON."""
        url = self.api_url(repo, "commits", quote(sha, safe=""))
        return [
            {k: item[k] for k in ("id", "title", "message", "date", "authors") if k in item}
            for item in self.get_pages(f"commits of {repo}@{sha[:12]}", url)
        ]

    def trending(self, type: RepoType, limit: int) -> list[dict]:
        """The first `limit` repos of a type by trending score: the fields trending filters look at, plus `info`,
        the popularity fields as the upstream listed them (raw JSON, for the per-repo snapshot)."""
        from mirror_core.popularity import LIST_EXPAND

        if limit <= 0:
            return []
        what = f"trending {type}"
        params = [("sort", "trendingScore"), ("limit", limit),
                  *[("expand", key) for key in ("sha", *LIST_EXPAND[type])]]
        found: list[dict] = []
        for item in self.get_pages(what, f"{self.endpoint}/api/{type}", params):
            try:
                found.append(_summary(item))
            except (AttributeError, KeyError, TypeError) as exc:
                raise UpstreamError(f"{what}: malformed entry {str(item)[:200]!r} ({exc!r})") from None
            if len(found) >= limit:
                break
        return found

    def can_read(self, repo: RepoRef) -> bool:
        """Whether our token may read the repo's files (gated/private repos need a grant)."""
        try:
            self.get_json(f"auth check of {repo}", self.api_url(repo, "auth-check"))
        except (GatedRepoError, UpstreamNotFoundError):
            return False
        except UpstreamAuthError:
            if self.token:
                raise  # our token itself is refused: every repo would fail, say so loudly
            return False
        return True


def _summary(item: dict[str, Any]) -> dict:
    """The fields of a raw listing item that trending filters look at, and the item itself as `info`."""
    return {
        "id": item["id"],
        "sha": item.get("sha"),
        "private": bool(item.get("private", False)),
        "gated": item.get("gated", False) or False,
        "tags": list(item.get("tags") or []),
        "library_name": item.get("library_name"),
        "pipeline_tag": item.get("pipeline_tag"),
        "trending_score": item.get("trendingScore"),
        "downloads": item.get("downloads"),
        "likes": item.get("likes"),
        "info": item,
    }


def _message(exc: HfHubHTTPError) -> str:
    text = getattr(exc, "server_message", None) or str(exc).split("\n", 1)[0]
    return " ".join(str(text).split())[:300]
