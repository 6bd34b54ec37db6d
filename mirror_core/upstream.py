"""The upstream hub's metadata API, on huggingface_hub's HfApi and HTTP session, with upstream manners.

Every call goes through one retry loop: 429 waits for `Retry-After` (or HF's `RateLimit` header),
5xx and network errors back off exponentially, and auth errors are raised at once as
UpstreamAuthError because retrying a refused token only burns the rate limit. Repo info, trees and
commit logs are kept as the raw JSON the upstream sent, because manifests store them for serve to
answer HF clients with the same fields.
"""

from __future__ import annotations

import email.utils
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import httpx2
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.errors import GatedRepoError as HfGatedRepoError
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status, parse_ratelimit_headers

from mirror_core.errors import (
    GatedRepoError,
    RateLimitedError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamRevisionNotFoundError,
)
from mirror_core.layout import URL_PREFIXES, RepoRef, RepoType
from mirror_core.manifest import REF_KINDS
from mirror_core.settings import Settings

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
NETWORK_ERRORS = (httpx2.TransportError, httpx.TransportError, ConnectionError, TimeoutError)


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds the server asked us to wait: `Retry-After` (seconds or HTTP date) or HF's `RateLimit`."""
    value = headers.get("retry-after") if headers is not None else None
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            pass  # unreadable: fall back to the RateLimit header, else the caller's own backoff
    info = parse_ratelimit_headers(headers) if headers is not None else None
    if info is not None and info.remaining == 0:
        return float(info.reset_in_seconds)
    return None


@dataclass
class RetryPolicy:
    """How long to wait before the next attempt; shared by metadata calls and body transfers."""

    max_retries: int = 5
    base: float = 1.0
    cap: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        t = settings.transfer
        return cls(max_retries=t.max_retries, base=t.backoff_base, cap=t.max_wait)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Wait before retry number `attempt` (0-based): the server's wish if given, else 2^n backoff."""
        if retry_after is not None:
            return min(retry_after, self.cap)
        return min(self.base * (2 ** attempt), self.cap)


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
        # token=False: never fall back to a token saved on this machine; the mirror uses only its own.
        self.api = HfApi(endpoint=self.endpoint, token=self.token or False, library_name="hubmirror")
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

    def headers(self) -> dict[str, str]:
        return build_hf_headers(token=self.token or False, library_name="hubmirror")

    def api_url(self, repo: RepoRef, *parts: str) -> str:
        return "/".join([f"{self.endpoint}/api/{repo.type}/{repo.repo_id}", *parts])

    def resolve_url(self, repo: RepoRef, revision: str, path: str) -> str:
        return (f"{self.endpoint}/{URL_PREFIXES[repo.type]}{repo.repo_id}/resolve/"
                f"{quote(revision, safe='')}/{quote(path)}")

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one upstream request with the retry policy; map failures to mirror_core errors."""
        for attempt in itertools.count():
            self._count()
            try:
                return fn()
            except HfHubHTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                fatal = _fatal_error(what, exc, status)
                if fatal is not None:
                    raise fatal from exc
                retry_after = retry_after_seconds(exc.response.headers) if status == 429 else None
                if attempt >= self.policy.max_retries:
                    if status == 429:
                        raise RateLimitedError(
                            f"{what}: the upstream kept answering 429 (rate limited) after {attempt + 1} attempts; "
                            "lower the sync concurrency or wait", retry_after) from exc
                    raise UpstreamError(f"{what}: upstream answered {status} after {attempt + 1} attempts") from exc
                self.policy.sleep(self.policy.delay(attempt, retry_after))
            except OfflineModeIsEnabled as exc:
                raise UpstreamError(f"{what}: huggingface_hub is in offline mode; unset HF_HUB_OFFLINE to sync") \
                    from exc
            except NETWORK_ERRORS as exc:
                if attempt >= self.policy.max_retries:
                    raise UpstreamError(
                        f"{what}: upstream {self.endpoint} unreachable after {attempt + 1} attempts "
                        f"({type(exc).__name__}: {exc})"
                    ) from exc
                self.policy.sleep(self.policy.delay(attempt))
        raise AssertionError("unreachable")

    def _get(self, url: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None) -> httpx2.Response:
        response = get_session().get(url, params=params, headers=self.headers(), timeout=self.timeout)
        hf_raise_for_status(response)
        return response

    def get_json(self, what: str, url: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None) -> Any:
        return self.call(what, lambda: self._get(url, params).json())

    def get_pages(self, what: str, url: str, params: dict[str, Any] | None = None) -> Iterator[Any]:
        """Items of a Link-paged list; each page is retried on its own."""
        next_url: str | None = url
        first = True
        while next_url is not None:
            page_url, page_params = next_url, (params if first else None)
            response = self.call(what, lambda u=page_url, p=page_params: self._get(u, p))
            first = False
            yield from response.json()
            next_url = response.links.get("next", {}).get("url")

    # -- calls ---------------------------------------------------------------------------------

    def refs(self, repo: RepoRef, *, include_prs: bool = False) -> dict[str, dict[str, str]]:
        """Every ref of the repo: {"branches"|"tags"|"converts"|"pull_requests": {name: sha}} (one call)."""
        refs = self.call(f"list refs of {repo}", lambda: self.api.list_repo_refs(
            repo.repo_id, repo_type=repo.singular_type, include_pull_requests=include_prs))
        return {kind: {item.name: item.target_commit for item in getattr(refs, kind) or []} for kind in REF_KINDS}

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
                response = get_session().post(url, data={"paths": chunk, "expand": "true"}, headers=self.headers(),
                                              timeout=self.timeout)
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

        params = [("sort", "trendingScore"), ("limit", limit),
                  *[("expand", key) for key in ("sha", *LIST_EXPAND[type])]]
        items = self.get_json(f"trending {type}", f"{self.endpoint}/api/{type}", params)
        if not isinstance(items, list):
            raise UpstreamError(f"trending {type}: the upstream answered {str(items)[:200]!r}, not a list")
        return [_summary(item) for item in items[:limit] if isinstance(item, dict) and "id" in item]

    def can_read(self, repo: RepoRef) -> bool:
        """Whether our token may read the repo's files (gated/private repos need a grant)."""
        try:
            self.call(f"auth check of {repo}", lambda: self.api.auth_check(
                repo.repo_id, repo_type=repo.singular_type))
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


def _fatal_error(what: str, exc: HfHubHTTPError, status: int | None) -> UpstreamError | None:
    """The mirror_core error for a response retrying cannot fix, or None if it is worth retrying."""
    detail = _message(exc)
    if isinstance(exc, HfGatedRepoError):
        return GatedRepoError(f"{what}: the repo is gated and the service token has no access ({detail}); "
                              "request access for the token's account or leave the repo out")
    if isinstance(exc, RevisionNotFoundError):
        return UpstreamRevisionNotFoundError(f"{what}: revision not found on the upstream ({detail})")
    if isinstance(exc, EntryNotFoundError):
        return UpstreamNotFoundError(f"{what}: file not found on the upstream ({detail})")
    if isinstance(exc, RepositoryNotFoundError) and exc.response is not None \
            and exc.response.headers.get("x-error-code") == "RepoNotFound":
        return UpstreamNotFoundError(f"{what}: repo not found on the upstream, or private to another account "
                                     f"({detail}); check the id and type")
    if status in (401, 403):
        return UpstreamAuthError(f"{what}: the upstream refused the service token ({status}: {detail}); "
                                 "check HUBMIRROR_UPSTREAM_TOKEN")
    if isinstance(exc, RepositoryNotFoundError) or status == 404:
        return UpstreamNotFoundError(f"{what}: not found on the upstream ({detail})")
    if status is not None and status not in RETRY_STATUSES:
        return UpstreamError(f"{what}: upstream answered {status} ({detail})")
    return None


def _message(exc: HfHubHTTPError) -> str:
    text = getattr(exc, "server_message", None) or str(exc).split("\n", 1)[0]
    return " ".join(str(text).split())[:300]
