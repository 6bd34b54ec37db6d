"""Pure pieces of serve: raw-path routing, Range parsing, cursors, error answers."""

from __future__ import annotations

import json

import pytest

from serve.api import decode_cursor, encode_cursor, page
from serve.errors import BadRequest, EntryNotFound, GatedRepo, RangeNotSatisfiable, RepoNotFound
from serve.paths import parse
from serve.resolve import parse_range


@pytest.mark.parametrize(("raw", "expected"), [
    ("/org/model/resolve/main/config.json", ("models", "org/model", "main", "config.json")),
    ("/gpt2/resolve/main/config.json", ("models", "gpt2", "main", "config.json")),
    ("/datasets/org/ds/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet",
     ("datasets", "org/ds", "refs/convert/parquet", "default/train/0000.parquet")),
    ("/spaces/org/sp/resolve/refs%2Fpr%2F1/app.py", ("spaces", "org/sp", "refs/pr/1", "app.py")),
    ("/org/model/resolve/feature%2Fx/sub/dir/file%20with%20space.txt",
     ("models", "org/model", "feature/x", "sub/dir/file with space.txt")),
    ("/org/model/resolve/refs/pr/1/a.txt", ("models", "org/model", "refs/pr/1", "a.txt")),
])
def test_resolve_paths(raw: str, expected: tuple[str, str, str, str]) -> None:
    kind, candidates = parse(raw)
    assert kind == "resolve"
    t = candidates[0]
    assert (t.repo_type, t.repo_id, t.revision, t.path) == expected


def test_api_paths_keep_quoted_slashes_apart() -> None:
    kind, [t] = parse("/api/models/org/model/tree/refs%2Fpr%2F1/sub%2Fdir?recursive=false")
    assert (kind, t.action, t.revision, t.path) == ("api-repo", "tree", "refs/pr/1", "sub/dir")
    _, [t] = parse("/api/datasets/org/ds/revision/refs%2Fconvert%2Fparquet")
    assert (t.action, t.repo_type, t.revision) == ("info", "datasets", "refs/convert/parquet")
    _, [t] = parse("/api/models/org/model/paths-info/main")
    assert (t.action, t.revision) == ("paths-info", "main")
    _, [t] = parse("/api/models/org/model/commits/v1.0")
    assert (t.action, t.revision) == ("commits", "v1.0")


def test_single_segment_ids_are_candidates() -> None:
    _, candidates = parse("/api/models/gpt2/refs")
    assert [(c.action, c.repo_id) for c in candidates] == [("info", "gpt2/refs"), ("refs", "gpt2")]
    _, [t] = parse("/api/models/gpt2/tree/main")
    assert (t.action, t.repo_id, t.revision) == ("tree", "gpt2", "main")
    assert parse("/api/models")[0] == "list"
    assert parse("/api/whoami-v2")[0] == "api:whoami-v2"


@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 10, None), ("bytes=0-3", 10, (0, 3)), ("bytes=5-", 10, (5, 9)), ("bytes=8-100", 10, (8, 9)),
    ("bytes=-3", 10, (7, 9)), ("bytes=-30", 10, (0, 9)), ("bytes=9-9", 10, (9, 9)),
    ("bytes=0-1,4-5", 10, None), ("items=0-1", 10, None), ("bytes=5-2", 10, None), ("bytes=x-1", 10, None),
])
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=0-", 0),
                                              ("bytes=-0", 10)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, size)
    response = info.value.response()
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert response.headers["x-error-code"] == "RangeNotSatisfiable"


def test_cursor_roundtrip_and_pages() -> None:
    assert decode_cursor(encode_cursor(1234)) == 1234
    assert decode_cursor(None) == 0
    with pytest.raises(BadRequest):
        decode_cursor("not-a-cursor!")
    items = list(range(25))
    chunk, headers = page(items, 0, 10, "http://m/api/models/a/b/tree/x?recursive=true")
    assert chunk == list(range(10))
    link = headers["Link"]
    assert link.startswith("<http://m/api/models/a/b/tree/x?recursive=true&cursor=") and link.endswith('>; rel="next"')
    cursor = link.split("cursor=")[1].split(">")[0]
    chunk, headers = page(items, decode_cursor(cursor), 10, "http://m/x")
    assert chunk == list(range(10, 20))
    chunk, headers = page(items, 20, 10, "http://m/x")
    assert chunk == list(range(20, 25)) and headers == {}


def test_error_answers_carry_codes() -> None:
    r = RepoNotFound("a/b", authenticated=False).response()
    assert (r.status_code, r.headers["x-error-code"]) == (401, "RepoNotFound")
    assert RepoNotFound("a/b", authenticated=True).response().status_code == 404
    r = EntryNotFound("x.txt", "main", "a" * 40).response()
    assert (r.status_code, r.headers["x-error-code"], r.headers["x-repo-commit"]) == (404, "EntryNotFound", "a" * 40)
    assert json.loads(r.body)["error"]
    assert GatedRepo("a/b", authenticated=False).response().status_code == 401
    assert GatedRepo("a/b", authenticated=True).response().status_code == 403
    head = RepoNotFound("a/b", authenticated=False).response(head=True)
    assert head.body == b"" and head.headers["content-length"] == "0"


def test_serve_command_refuses_bad_settings_before_starting(monkeypatch, capsys) -> None:
    """A typo must stop `hubmirror serve` at once with the variable named, not crash each worker later."""
    from hubmirror.cli import main

    monkeypatch.setenv("HUBMIRROR_SERVE_PRESIGN_SECONDS", "five")
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "HUBMIRROR_SERVE_PRESIGN_SECONDS" in err and "integer" in err


@pytest.mark.parametrize(("private", "gated", "expected"), [
    (False, False, (False, False)),
    (False, "auto", (False, "auto")),
    (False, "manual", (False, "manual")),
    (True, False, (True, False)),
    (None, None, (True, "manual")),  # written by an older version: unknown is no access
    (False, None, (True, "manual")),
    (None, False, (True, "manual")),
])
def test_access_comes_from_refs_and_unknown_is_private(private, gated, expected) -> None:
    import asyncio

    from mirror_core.manifest import Refs
    from serve.context import restriction
    from serve.repo_state import RefsEntry

    entry = RefsEntry(Refs(upstream="http://u.invalid", private=private, gated=gated), expires=0)
    assert asyncio.run(restriction(None, None, entry)) == expected  # type: ignore[arg-type]


def test_lru_forgets_the_least_recently_used() -> None:
    from serve.repo_state import LRU

    lru: LRU[str, int] = LRU(3)
    for i, key in enumerate("abc"):
        lru.put(key, i)
    assert lru.get("a") == 0  # "a" is now the most recent
    lru.put("d", 3)
    assert len(lru) == 3 and lru.get("b") is None and lru.get("a") == 0 and lru.get("d") == 3


def test_weighted_lru_is_bounded_by_weight_and_refuses_oversized_items() -> None:
    from serve.repo_state import LRU

    lru: LRU[str, str] = LRU(100, max_item=25)
    lru.put("huge", "x", 26)  # would evict a quarter of the cache by itself: not kept
    for key in "abcde":
        lru.put(key, key, 25)
    assert lru.get("huge") is None and lru.get("a") is None and lru.weight == 100 and len(lru) == 4
    lru.put("b", "B", 5)  # replacing an entry re-weighs it
    assert lru.get("b") == "B" and lru.weight == 80


def test_ondemand_settings_are_closed_by_default_and_read_the_environment(monkeypatch) -> None:
    from serve.config import load_serve_settings

    s3 = {"endpoint": "http://127.0.0.1:1", "access_key": "k", "secret_key": "s", "bucket": "b", "region": "r"}
    monkeypatch.setenv("HUBMIRROR_UPSTREAM_URL", "http://hub.invalid:9")
    monkeypatch.setenv("HUBMIRROR_UPSTREAM_TOKEN", "hf_secret")
    settings = load_serve_settings(s3=s3)
    assert settings.ondemand_anonymous is False and settings.ondemand_allow == []
    assert settings.upstream_url == "http://hub.invalid:9" and "hf_secret" not in settings.model_dump_json()
    monkeypatch.setenv("HUBMIRROR_SERVE_ONDEMAND_ANONYMOUS", "true")
    monkeypatch.setenv("HUBMIRROR_SERVE_ONDEMAND_ALLOW", "org/*, datasets:org/*")
    settings = load_serve_settings(s3=s3)
    assert settings.ondemand_anonymous and settings.ondemand_allow == ["org/*", "datasets:org/*"]


@pytest.mark.parametrize(("value", "expected"), [
    (None, "fast"), ("fast", "fast"), ("sha256", "sha256"), ("off", "off"),
    ("true", "fast"), ("1", "fast"), ("false", "off"), ("0", "off"),  # the earlier boolean switch still works
])
def test_verify_mode_defaults_to_fast_and_accepts_the_old_boolean(monkeypatch, value, expected) -> None:
    from serve.config import load_serve_settings

    s3 = {"endpoint": "http://127.0.0.1:1", "access_key": "k", "secret_key": "s", "bucket": "b", "region": "r"}
    if value is not None:
        monkeypatch.setenv("HUBMIRROR_SERVE_VERIFY_FULL_GETS", value)
    settings = load_serve_settings(s3=s3)
    assert settings.verify_full_gets == expected
    assert settings.access_log is False  # off unless asked for: it costs ~20% of HEAD throughput


def test_bad_verify_mode_is_refused_with_the_choices_named(monkeypatch) -> None:
    from mirror_core.errors import ConfigError
    from serve.config import load_serve_settings

    s3 = {"endpoint": "http://127.0.0.1:1", "access_key": "k", "secret_key": "s", "bucket": "b", "region": "r"}
    monkeypatch.setenv("HUBMIRROR_SERVE_VERIFY_FULL_GETS", "md5")
    with pytest.raises(ConfigError, match="HUBMIRROR_SERVE_VERIFY_FULL_GETS.*'fast', 'sha256' or 'off'"):
        load_serve_settings(s3=s3)


def test_body_check_remembers_only_proven_bytes() -> None:
    """A fingerprint is remembered only after sha256 matched, and forgotten at the first mismatch."""
    import hashlib
    import os

    from serve.repo_state import LRU
    from serve.resolve import BodyCheck

    good = os.urandom(3 * 1024 * 1024)
    bad = good[:-1] + bytes([good[-1] ^ 1])
    sha = hashlib.sha256(good).hexdigest()
    memo: LRU[str, int] = LRU(10)

    def check(data: bytes, mode: str = "fast") -> BodyCheck:
        c = BodyCheck(sha, memo, mode)
        for i in range(0, len(data), 1024 * 1024):
            c.update(data[i:i + 1024 * 1024])
        return c

    first = check(bad)
    assert first.hasher is not None and not first.passed() and memo.get(sha) is None  # bad bytes teach nothing
    proven = check(good)
    assert proven.hasher is not None and proven.passed() and memo.get(sha) is not None
    later = check(good)
    assert later.hasher is None and later.passed()  # no sha256 any more: the fingerprint suffices
    caught = check(bad)
    assert caught.hasher is None and not caught.passed() and memo.get(sha) is None
    assert check(good).hasher is not None  # after a mismatch the body is proven with sha256 again
    every = check(good, "sha256")
    assert every.hasher is not None and every.passed()
