"""The one retry policy and status mapping shared by metadata calls (upstream.py) and body downloads (bodies.py)."""

from __future__ import annotations

import pytest

from mirror_core.errors import (
    GatedRepoError,
    IntegrityError,
    RateLimitedError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamRevisionNotFoundError,
)
from mirror_core.retry import RetryPolicy, Transient, status_error


@pytest.mark.parametrize(("status", "headers", "kind", "text"), [
    (403, {"x-error-code": "GatedRepo"}, GatedRepoError, "gated"),
    (404, {"x-error-code": "RevisionNotFound"}, UpstreamRevisionNotFoundError, "revision not found"),
    (404, {"x-error-code": "EntryNotFound"}, UpstreamNotFoundError, "file not found"),
    (404, {"x-error-code": "RepoNotFound"}, UpstreamNotFoundError, "check the id and type"),
    (401, {}, UpstreamAuthError, "HUBMIRROR_UPSTREAM_TOKEN"),
    (404, {}, UpstreamNotFoundError, "not found on the upstream"),
    (416, {}, IntegrityError, "shorter than it announced"),
    (400, {"x-error-message": "bad"}, UpstreamError, "upstream answered 400: bad"),
])
def test_answers_retrying_cannot_fix_are_final(status, headers, kind, text) -> None:
    error = status_error("get x", status, headers)
    assert type(error) is kind and text in str(error) and str(error).startswith("get x: ")


def test_transient_answers_carry_the_servers_wait() -> None:
    limited = status_error("get x", 429, {"retry-after": "7"})
    assert isinstance(limited, Transient) and limited.status == 429 and limited.retry_after == 7
    assert isinstance(status_error("get x", 503, {}), Transient)
    assert isinstance(status_error("get x", None, None), Transient)  # no answer at all: worth another try


def test_run_retries_transients_then_gives_up_with_the_final_error() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_retries=2, base=1, cap=10, sleep=waits.append)
    calls = iter([Transient("get x: 503"), Transient("get x: 503"), "ok"])

    def flaky() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert policy.run("get x", flaky) == "ok" and waits == [1, 2]

    def limited() -> None:
        raise Transient("get x: upstream answered 429", retry_after=5, status=429)

    with pytest.raises(RateLimitedError, match="429.*after 3 attempts"):
        policy.run("get x", limited)
    assert waits == [1, 2, 5, 5]

    def down() -> None:
        raise Transient("get x: upstream answered 503")

    with pytest.raises(UpstreamError, match="503 .gave up after 3 attempts"):
        policy.run("get x", down)


def test_final_errors_are_not_retried() -> None:
    waits: list[float] = []
    attempts: list[int] = []

    def refused() -> None:
        attempts.append(1)
        raise status_error("get x", 401, {})

    with pytest.raises(UpstreamAuthError):
        RetryPolicy(max_retries=5, sleep=waits.append).run("get x", refused)
    assert attempts == [1] and waits == []
