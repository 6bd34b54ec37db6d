"""Which hosts the mirror may talk to on the upstream's behalf, and which of them may see its token.

The upstream's own origin is trusted with the service token. Anything the upstream points us at
elsewhere (a redirect, a pagination `Link`, a CDN) is followed only if its host is listed in
`transfer.allowed_redirect_hosts`, never downgrades https to http, and never receives the token.
Shared by the metadata client (upstream.py) and the body client (bodies.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mirror_core.errors import RedirectNotAllowedError


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def host_matches(url: str, pattern: str) -> bool:
    """Does the URL's host match `host`, `host:port`, `*.suffix` or `*.suffix:port`?"""
    _, host, port = _origin(url)
    pattern = pattern.strip().lower()
    want_port: int | None = None
    head, sep, tail = pattern.rpartition(":")
    if sep and tail.isdigit() and not head.endswith(":"):
        pattern, want_port = head, int(tail)
    pattern = pattern.strip("[]")
    if want_port is not None and want_port != port:
        return False
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return bool(pattern) and host == pattern


def redirect_allowed(target: str, upstream: str, allowed: list[str]) -> bool:
    """The upstream's own origin is always allowed; other hosts only if listed."""
    if _origin(target)[0] not in ("http", "https"):
        return False
    if same_origin(target, upstream):
        return True
    return any(host_matches(target, pattern) for pattern in allowed)


def same_origin(a: str, b: str) -> bool:
    return _origin(a) == _origin(b)


def hostname(url: str) -> str:
    return _origin(url)[1]


def host_port(url: str) -> str:
    _, host, port = _origin(url)
    return f"{host}:{port}"


def check_hop(what: str, current: str, target: str, upstream: str, allowed: list[str], via: str = "redirected") -> None:
    """Raise RedirectNotAllowedError unless the upstream may send us from `current` to `target`."""
    if _origin(current)[0] == "https" and _origin(target)[0] != "https":
        raise RedirectNotAllowedError(f"{what}: refusing to follow the upstream from https to {target.split('?')[0]}")
    if not redirect_allowed(target, upstream, allowed):
        raise RedirectNotAllowedError(
            f"{what}: the upstream {via} to {host_port(target)}, which is neither the upstream's origin nor in "
            "transfer.allowed_redirect_hosts; add it there only if you trust it (it never gets the token)"
        )
