"""Body downloads from the upstream: resolve URLs, hand-followed redirects, signed-URL reuse, resumable ranges.

Redirects are followed only to the upstream's origin or `transfer.allowed_redirect_hosts` (host rules in
origins.py), and the token goes only to the upstream's own origin (never to a CDN). A file is resolved
once and its signed CDN URL reused for every range until it expires or the CDN refuses it. The engines
in transfer.py read bodies through `BodyClient`; the metadata API is upstream.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urljoin, urlsplit

import urllib3

from mirror_core.errors import IntegrityError, UpstreamError
from mirror_core.layout import RepoRef
from mirror_core.origins import check_hop, hostname, same_origin
from mirror_core.retry import Transient, status_error
from mirror_core.settings import Settings
from mirror_core.upstream import MAX_REDIRECTS, REDIRECT_STATUSES, Upstream

CHUNK = 1024 * 1024
RANGE_CONNECTIONS = 4  # parallel ranged GETs per large body (stream engine)
EXPIRY_MARGIN = 2.0  # seconds: a signed URL this close to its stated expiry is renewed before use
_REFUSED = (401, 403, 410)  # a CDN's answers to an expired or revoked signed URL


class RangeNotSupported(UpstreamError):
    """The server answered a ranged GET with the whole body."""


class _Signed:
    """A body's final (signed CDN) URL, reused for every range of the file until it expires or is refused."""

    def __init__(self, url: str) -> None:
        self.url = url
        expires = url_expiry(url)
        # A URL that looks dead on arrival means our clock and the CDN's disagree (or a tiny lifetime):
        # then only the CDN's refusal tells, else every range would resolve again.
        self.expires = expires if expires is not None and expires - EXPIRY_MARGIN > time.time() else None

    def stale(self) -> bool:
        return self.expires is not None and self.expires - EXPIRY_MARGIN <= time.time()


def url_expiry(url: str) -> float | None:
    """When a signed URL stops working, if it says: `Expires=<unix time>` (CloudFront, S3 v2, the fake hub's
    CDN) or `X-Amz-Date` + `X-Amz-Expires` (S3 SigV4). None when unknown: the CDN's refusal tells us then."""
    query = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query)}
    expires = query.get("expires", "")
    if expires.isdigit():
        return float(expires)
    date, ttl = query.get("x-amz-date", ""), query.get("x-amz-expires", "")
    if date and ttl.isdigit():
        try:
            return datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp() + int(ttl)
        except ValueError:
            return None
    return None


class BodyClient:
    """Opens body downloads through resolve URLs with the mirror's redirect, auth and retry rules.

    A file is resolved once: the signed URL the upstream redirects to is kept and reused for every
    range of that file (one `/resolve` per file, not per part, which is what the upstream's rate
    limit counts), until it is about to expire or the CDN refuses it; then it is resolved again,
    once. Threads fetching ranges of the same file wait for one resolve instead of each sending one.
    """

    def __init__(self, settings: Settings, upstream: Upstream) -> None:
        self.upstream = upstream
        self.allowed = list(settings.transfer.allowed_redirect_hosts)
        self.policy = upstream.policy
        self.http = urllib3.PoolManager(
            num_pools=8, maxsize=settings.transfer.concurrency * RANGE_CONNECTIONS + 4, retries=False,
            timeout=urllib3.Timeout(connect=10, read=settings.transfer.timeout),
        )
        self._signed: dict[tuple[str, ...], _Signed] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def _headers(self, url: str, start: int, end: int | None = None) -> dict[str, str]:
        headers = {"Accept-Encoding": "identity", "User-Agent": "hubmirror"}
        if self.upstream.token and same_origin(url, self.upstream.endpoint):
            headers["Authorization"] = f"Bearer {self.upstream.token}"
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        return headers

    @staticmethod
    def _key(repo: RepoRef, sha: str, path: str) -> tuple[str, ...]:
        return repo.type, repo.repo_id, sha, path

    def _lock(self, key: tuple[str, ...]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def forget(self, repo: RepoRef, sha: str, path: str) -> None:
        """The file is done: drop its signed URL (keeps the cache as small as the files in flight)."""
        key = self._key(repo, sha, path)
        with self._guard:
            self._signed.pop(key, None)
            self._locks.pop(key, None)

    def open(self, repo: RepoRef, sha: str, path: str, start: int = 0,
             end: int | None = None) -> tuple[urllib3.BaseHTTPResponse, str]:
        """GET the body from `start` (inclusive `end`), following allowed redirects; (response, final URL).

        Uses the file's signed URL if one is known and fresh, else resolves (once, whatever the number
        of threads asking). Raises Transient for transient failures, an UpstreamError subclass for final ones.
        """
        key = self._key(repo, sha, path)
        what = f"{repo}@{sha[:12]}/{path}"
        refused: _Signed | None = None
        for _ in range(2):
            with self._lock(key):
                signed = self._signed.get(key)
                if signed is None or signed is refused or signed.stale():
                    return self._resolve(key, what, self.upstream.resolve_url(repo, sha, path), start, end)
            response, url = self._follow(what, signed.url, start, end)
            if not self._refused(response, url):
                return self._accept(what, response, url)
            _discard(response)
            refused = signed  # expired early, revoked or clock skew: resolve again (once)
        assert refused is not None  # both rounds either returned or refused a signed URL
        raise Transient(f"{what}: {hostname(refused.url)} refused two signed URLs in a row; re-resolving")

    def _resolve(self, key: tuple[str, ...], what: str, resolve_url: str, start: int,
                 end: int | None) -> tuple[urllib3.BaseHTTPResponse, str]:
        """GET through the upstream's resolve URL (the caller holds the file's lock) and keep where it led."""
        self._signed.pop(key, None)
        response, url = self._follow(what, resolve_url, start, end)
        if self._refused(response, url):
            status = response.status
            _discard(response)
            raise Transient(f"{what}: {hostname(url)} refused the signed URL ({status}); re-resolving", None, status)
        if url != resolve_url and response.status in (200, 206):
            self._signed[key] = _Signed(url)
        return self._accept(what, response, url)

    def _refused(self, response: urllib3.BaseHTTPResponse, url: str) -> bool:
        """A CDN refusing a signed URL (expired, revoked, clock skew): resolving again signs a fresh one."""
        return response.status in _REFUSED and not same_origin(url, self.upstream.endpoint)

    @staticmethod
    def _accept(what: str, response: urllib3.BaseHTTPResponse, url: str) -> tuple[urllib3.BaseHTTPResponse, str]:
        if response.status in (200, 206):
            return response, url
        error = status_error(what, response.status, response.headers)
        _discard(response)
        raise error

    def _follow(self, what: str, url: str, start: int, end: int | None) -> tuple[urllib3.BaseHTTPResponse, str]:
        """GET `url`, following redirects only to allowed hosts; the first non-redirect answer and its URL."""
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self.http.request("GET", url, headers=self._headers(url, start, end), redirect=False,
                                             preload_content=False, decode_content=False)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise Transient(f"{what}: connection to {hostname(url)} failed ({type(exc).__name__}: {exc})") from exc
            if response.status not in REDIRECT_STATUSES:
                return response, url
            location = response.headers.get("location")
            _discard(response)
            if not location:
                raise UpstreamError(f"{what}: redirect {response.status} without a Location header")
            target = urljoin(url, location)
            check_hop(what, url, target, self.upstream.endpoint, self.allowed)
            url = target
        raise UpstreamError(f"{what}: more than {MAX_REDIRECTS} redirects")

    def final_url(self, repo: RepoRef, sha: str, path: str) -> tuple[str, dict[str, str]]:
        """Where the body really lives, and the headers to GET it with (for engines that fetch it themselves)."""
        response, url = self.policy.run(f"{repo}/{path}", lambda: self.open(repo, sha, path, 0, 0))
        _drop(response, complete=False)
        headers = self._headers(url, 0)
        headers.pop("Range", None)
        return url, headers

    def iter_body(self, repo: RepoRef, sha: str, path: str, size: int, start: int = 0,
                  on_bytes: Callable[[int], None] | None = None, stop: int | None = None) -> Iterator[bytes]:
        """The bytes [start, stop or size) of a body, resuming with Range after drops (on the file's signed
        URL while it is valid, else resolved again). Yields exactly that many bytes, or raises.

        With `stop` (a ranged part), a server that ignores Range raises RangeNotSupported so that the
        caller can fall back to one sequential stream instead of downloading the body once per part.
        """
        stop = size if stop is None else stop
        ranged = stop < size
        pos = start
        failures = 0
        what = f"{repo}@{sha[:12]}/{path}"
        while pos < stop:
            try:
                response, _ = self.open(repo, sha, path, pos, stop - 1 if ranged else None)
                try:
                    if response.status == 200 and ranged:
                        raise RangeNotSupported(f"{what}: the server ignores Range requests")
                    skip = _range_skip(what, response, pos)
                    for chunk in response.stream(CHUNK, decode_content=False):
                        if skip:
                            cut = min(skip, len(chunk))
                            chunk, skip = chunk[cut:], skip - cut
                            if not chunk:
                                continue
                        if pos + len(chunk) > stop:
                            raise IntegrityError(f"{what}: the upstream sent more than the {stop - start} bytes "
                                                 f"asked for (body of {size} bytes)")
                        pos += len(chunk)
                        failures = 0
                        if on_bytes is not None:
                            on_bytes(len(chunk))
                        yield chunk
                finally:
                    _drop(response, complete=pos >= stop)
                if pos < stop:
                    raise Transient(f"{what}: the connection ended at byte {pos} of {size}")
            except Transient as exc:
                self.policy.backoff(what, exc, failures)
                failures += 1
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                dropped = Transient(f"{what}: download failed at byte {pos} of {size} ({type(exc).__name__}: {exc})")
                dropped.__cause__ = exc
                self.policy.backoff(what, dropped, failures)
                failures += 1

    def close(self) -> None:
        self.http.clear()


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Done with a redirect or error answer: keep the connection if its body is small, else close it."""
    length = response.headers.get("content-length", "")
    _drop(response, complete=length.isdigit() and int(length) <= 64 * 1024)


def _drop(response: urllib3.BaseHTTPResponse, complete: bool) -> None:
    """Release a response; a body left unread is closed rather than drained (it may be gigabytes)."""
    try:
        if complete:
            response.drain_conn()
        else:
            response.close()
    except Exception:  # noqa: BLE001 - a connection we give up on may be broken; closing is enough
        response.close()
    response.release_conn()


def _range_skip(what: str, response: urllib3.BaseHTTPResponse, pos: int) -> int:
    """Bytes to drop from the start of the response so that it continues at `pos`."""
    if response.status == 206:
        content_range = response.headers.get("content-range", "")
        try:
            first = int(content_range.split()[1].split("-")[0])
        except (IndexError, ValueError):
            raise Transient(f"{what}: unreadable Content-Range {content_range!r}") from None
        if first > pos:
            raise Transient(f"{what}: asked for bytes from {pos}, got a range starting at {first}")
        return pos - first
    return pos  # 200: the server ignored Range and sends from byte 0
