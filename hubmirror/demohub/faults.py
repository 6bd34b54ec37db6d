"""Fault injection and traffic accounting, as an ASGI wrapper around the hub and CDN apps.

Wrapping at the ASGI level means every fault and every counted byte is what really went over the
wire, whatever the route: tests can assert "0 body bytes on the second sync" or inject a dropped
connection after N bytes without the routes knowing anything about it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

ACTIONS = ("error", "rate_limit", "drop", "corrupt", "delay", "redirect")
KINDS = ("api", "resolve", "cdn", "other")
MAX_LOG = 200_000

Scope = dict
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]

_GROUPS = {"error": "answer", "rate_limit": "answer", "redirect": "answer", "drop": "body", "corrupt": "body"}


class InjectedDrop(Exception):
    """Raised mid-body so the server closes the connection with the response incomplete."""


@dataclass
class Fault:
    """One rule. It applies to requests matching kind/path/method, skipping the first `skip` of them,
    then to the next `count` (if set) or to all of them."""

    action: str
    kind: str | None = None
    path: str | None = None  # substring of the raw path (e.g. a repo id or a file name)
    method: str | None = None
    header: str | None = None  # "name: substring" of a request header (e.g. "user-agent: hf_transfer")
    status: int = 503  # error
    retry_after: int = 1  # rate_limit, seconds
    after_bytes: int = 0  # drop: body bytes sent before the connection is cut
    offset: int | None = None  # corrupt: body offset of the flipped byte (default: middle of the body)
    delay: float = 0.5  # delay, seconds before the response starts
    location: str = ""  # redirect: 302 to this origin + the request's raw path and query (hostile upstream)
    count: int | None = None
    skip: int = 0
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}; use one of {ACTIONS}")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {KINDS}")

    def matches(self, kind: str, method: str, path: str, headers: dict[str, str]) -> bool:
        return (
            (self.kind is None or self.kind == kind)
            and (self.method is None or self.method == method)
            and (self.path is None or self.path in path)
            and (self.header is None or self._header_matches(headers))
        )

    def _header_matches(self, headers: dict[str, str]) -> bool:
        name, _, value = (self.header or "").partition(":")
        return value.strip().lower() in headers.get(name.strip().lower(), "\0").lower()

    def should_fire(self) -> bool:
        self.seen += 1
        if self.seen <= self.skip:
            return False
        fire = self.count is None or self.fired < self.count
        self.fired += fire
        return fire

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Traffic:
    """Shared state of one fakehub process: faults, counters, request log, tunables."""

    faults: list[Fault] = field(default_factory=list)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def reset(self, defaults: dict) -> None:
        self.faults.clear()
        self.log.clear()
        self.counters = {k: {"requests": 0, "bytes": 0} for k in KINDS}
        self.config = dict(defaults)

    def record(self, entry: dict) -> None:
        c = self.counters.setdefault(entry["kind"], {"requests": 0, "bytes": 0})
        c["requests"] += 1
        c["bytes"] += entry["bytes"]
        if len(self.log) < MAX_LOG:
            self.log.append(entry)

    def pick(self, kind: str, method: str, path: str, headers: dict[str, str]) -> list[Fault]:
        """The faults that fire on this request: delays add up, but one request gets at most one answer
        fault and one body fault (the first rule that matches); the rest keep their counts for later."""
        fired: list[Fault] = []
        taken: set[str] = set()
        for f in self.faults:
            group = _GROUPS.get(f.action, f.action)
            if f.matches(kind, method, path, headers) and (group == "delay" or group not in taken) and f.should_fire():
                fired.append(f)
                taken.add(group)
        return fired


async def _send_json(send: Callable, status: int, body: dict, headers: list[tuple[bytes, bytes]]) -> int:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
    return len(raw)


def instrument(app: ASGIApp, traffic: Traffic, classify: Callable[[str], str | None]) -> ASGIApp:
    """Wrap `app`: apply matching faults, count requests and body bytes. `classify(path) -> None`
    exempts a request (the admin endpoints)."""

    async def wrapped(scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        raw_path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        kind = classify(raw_path)
        if kind is None:
            return await app(scope, receive, send)
        method = scope["method"]
        entry = {
            "kind": kind,
            "method": method,
            "path": raw_path,
            "query": scope.get("query_string", b"").decode(),
            "status": 0,
            "bytes": 0,
            "range": _header(scope, b"range"),
            "authorization": _header(scope, b"authorization") is not None,
            "at": time.time(),
            "fault": None,
        }
        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            fired = traffic.pick(kind, method, raw_path, headers)
            for fault in fired:
                if fault.action == "delay":
                    await asyncio.sleep(fault.delay)
            short = next((f for f in fired if f.action in ("error", "rate_limit", "redirect")), None)
            if short is not None:
                entry["fault"] = short.action
                if short.action == "redirect":
                    entry["status"] = 302
                    query = f"?{entry['query']}" if entry["query"] else ""
                    target = (short.location.rstrip("/") + raw_path + query).encode("latin-1")
                    entry["bytes"] = await _send_json(send, 302, {"error": "moved (injected)"}, [(b"location", target)])
                elif short.action == "error":
                    entry["status"] = short.status
                    entry["bytes"] = await _send_json(send, short.status, {"error": "injected fault"}, [])
                else:
                    entry["status"] = 429
                    wait = str(short.retry_after).encode()
                    entry["bytes"] = await _send_json(
                        send,
                        429,
                        {"error": "rate limited (injected)"},
                        [(b"retry-after", wait), (b"ratelimit", b'"api";r=0;t=' + wait)],
                    )
                return
            body_fault = next((f for f in fired if f.action in ("drop", "corrupt")), None)
            await app(scope, receive, _counting_send(send, entry, body_fault, method))
        finally:
            traffic.record(entry)

    return wrapped


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _counting_send(send: Callable, entry: dict, fault: Fault | None, method: str) -> Callable:
    state: dict[str, int] = {"length": 0, "sent": 0}  # length 0: not announced

    async def counted(message: dict) -> None:
        if message["type"] == "http.response.start":
            entry["status"] = message["status"]
            for key, value in message.get("headers", []):
                if key.lower() == b"content-length":
                    state["length"] = int(value)
            return await send(message)
        if message["type"] != "http.response.body":
            return await send(message)
        body = message.get("body", b"")
        if method == "HEAD":  # the server never puts a HEAD body on the wire
            return await send(message)
        start = state["sent"]
        if fault is not None and body:
            if fault.action == "drop" and start + len(body) > fault.after_bytes:
                entry["fault"] = "drop"
                keep = body[: max(0, fault.after_bytes - start)]
                if keep:
                    await send({"type": "http.response.body", "body": keep, "more_body": True})
                    state["sent"] += len(keep)
                    entry["bytes"] += len(keep)
                raise InjectedDrop(f"connection dropped after {state['sent']} body bytes (injected)")
            if fault.action == "corrupt":
                target = fault.offset if fault.offset is not None else state["length"] // 2
                if start <= target < start + len(body):
                    entry["fault"] = "corrupt"
                    mutable = bytearray(body)
                    mutable[target - start] ^= 0xFF
                    body = bytes(mutable)
                    message = {**message, "body": body}
        state["sent"] += len(body)
        entry["bytes"] += len(body)
        await send(message)

    return counted
