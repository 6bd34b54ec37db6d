"""How the mirror retries the upstream, and what an upstream answer means, for metadata and bodies alike.

Metadata calls (upstream.py) and body downloads (bodies.py) share one policy: 429 waits for
`Retry-After` (or HF's `RateLimit` header), 5xx and network errors back off exponentially, and
answers retrying cannot fix (auth, gated, not found) are raised at once, because retrying a refused
token only burns the rate limit. A transient failure is a `Transient`; `RetryPolicy.run` retries
it and, when the retries are used up, raises the final UpstreamError (RateLimitedError for 429).
"""

from __future__ import annotations

import email.utils
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from huggingface_hub.utils import parse_ratelimit_headers

from mirror_core.errors import (
    GatedRepoError,
    IntegrityError,
    RateLimitedError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamRevisionNotFoundError,
)
from mirror_core.settings import Settings

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Transient(Exception):
    """A failure worth another attempt: wait (the server's Retry-After if it gave one) and try again."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


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
    """How long to wait before the next attempt, and when to give up; shared by metadata calls and bodies."""

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

    def backoff(self, what: str, exc: Transient, attempt: int) -> None:
        """Wait before retrying failed attempt number `attempt` (0-based), or raise the final error if that
        was the last one allowed."""
        if attempt >= self.max_retries:
            raise exhausted(what, exc, attempt + 1) from exc
        self.sleep(self.delay(attempt, exc.retry_after))

    def run(self, what: str, fn: Callable[[], T]) -> T:
        """`fn()`, attempted again after each Transient it raises, as long as the policy allows."""
        for attempt in itertools.count():
            try:
                return fn()
            except Transient as exc:
                self.backoff(what, exc, attempt)
        raise AssertionError("unreachable")


def exhausted(what: str, exc: Transient, attempts: int) -> UpstreamError:
    """The final error once the retries of a transient failure are used up."""
    if exc.status == 429:
        return RateLimitedError(f"{what}: the upstream kept answering 429 (rate limited) after {attempts} attempts; "
                                "lower transfer.concurrency or wait", exc.retry_after)
    return UpstreamError(f"{exc} (gave up after {attempts} attempts)")


def status_error(what: str, status: int | None, headers: Any, message: str | None = None) -> Exception:
    """The error for an upstream HTTP answer: a mirror_core error if retrying cannot fix it, else a Transient.

    Read from the status and the Hub's `X-Error-Code`; `message` defaults to its `X-Error-Message`.
    """
    code = (headers.get("x-error-code") if headers is not None else None) or ""
    if message is None:
        message = (headers.get("x-error-message") if headers is not None else None) or ""
    retry_after = retry_after_seconds(headers) if status == 429 else None
    detail = f"{status}{' ' + code if code else ''}{': ' + message if message else ''}"
    if code == "GatedRepo":
        return GatedRepoError(f"{what}: the repo is gated and the service token has no access ({detail}); "
                              "request access for the token's account or leave the repo out")
    if code == "RevisionNotFound":
        return UpstreamRevisionNotFoundError(f"{what}: revision not found on the upstream ({detail})")
    if code == "EntryNotFound":
        return UpstreamNotFoundError(f"{what}: file not found on the upstream ({detail})")
    if code == "RepoNotFound":
        return UpstreamNotFoundError(f"{what}: repo not found on the upstream, or private to another account "
                                     f"({detail}); check the id and type")
    if status in (401, 403):
        return UpstreamAuthError(f"{what}: the upstream refused the service token ({detail}); "
                                 "check HUBMIRROR_UPSTREAM_TOKEN")
    if status == 404:
        return UpstreamNotFoundError(f"{what}: not found on the upstream ({detail})")
    if status == 416:
        return IntegrityError(f"{what}: the upstream's body is shorter than it announced ({detail})")
    if status is None or status in RETRY_STATUSES:
        return Transient(f"{what}: upstream answered {detail}", retry_after, status)
    return UpstreamError(f"{what}: upstream answered {detail}")
