"""Parse HF URLs from the RAW path: revisions and tree paths arrive %2F-quoted (`refs%2Fpr%2F1`,
`sub%2Fdir`), so decoding before splitting would make a revision indistinguishable from a path.

Repo ids have one or two segments (`gpt2`, `org/model`); where both readings fit (`/api/models/a/refs`)
every candidate is returned, two-segment first, and the caller picks the one that is mirrored.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from mirror_core.layout import RepoType
from mirror_core.manifest import REF_KINDS

API_ACTIONS = frozenset({"revision", "tree", "paths-info", "refs", "commits", "auth-check", "xet-read-token",
                         "treesize", "discussions", "preupload", "commit"})
_TYPES: dict[str, RepoType] = {"models": "models", "datasets": "datasets", "spaces": "spaces"}
_URL_PREFIX: dict[str, RepoType] = {"datasets": "datasets", "spaces": "spaces"}
_REF_NAMESPACES = frozenset(kind.prefix.split("/")[1] for kind in REF_KINDS)  # heads, tags, convert, pr


@dataclass(frozen=True)
class Target:
    """What one request addresses: an action on a repo at a revision (and a path inside it)."""

    action: str  # resolve | info | tree | paths-info | refs | commits | auth-check | ...
    repo_type: RepoType
    repo_id: str
    revision: str | None = None
    path: str = ""
    extra: str = ""  # e.g. "write" for auth-check/write


def _take_revision(segs: list[str]) -> tuple[str, list[str]] | None:
    """The revision segment (decoded) and what follows; also accepts an unquoted `refs/pr/1`."""
    if not segs or not segs[0]:
        return None
    if segs[0] == "refs" and len(segs) >= 3 and segs[1] in _REF_NAMESPACES:
        return "/".join(unquote(s) for s in segs[:3]), segs[3:]
    return unquote(segs[0]), segs[1:]


def _join_path(segs: list[str]) -> str:
    return unquote("/".join(segs)).strip("/")


def _repo_id(segs: list[str]) -> str | None:
    ids = [unquote(s) for s in segs]
    return "/".join(ids) if all(ids) else None


def _api_tail(repo_type: RepoType, repo_id: str, tail: list[str]) -> Target | None:
    if not tail:
        return Target("info", repo_type, repo_id)
    action, rest = tail[0], tail[1:]
    if action not in API_ACTIONS:
        return None
    if action in ("refs",) and not rest:
        return Target(action, repo_type, repo_id)
    if action == "auth-check" and len(rest) <= 1:
        return Target(action, repo_type, repo_id, extra=rest[0] if rest else "")
    if action in ("revision", "commits"):
        if not rest or not rest[0]:
            return None
        return Target("info" if action == "revision" else action, repo_type, repo_id, unquote("/".join(rest)))
    if action in ("tree", "paths-info", "treesize"):
        taken = _take_revision(rest)
        if taken is None:
            return None
        revision, path = taken
        return Target(action, repo_type, repo_id, revision, _join_path(path))
    return Target(action, repo_type, repo_id, extra="/".join(rest))


def parse(raw_path: str) -> tuple[str, list[Target]]:
    """Classify a raw request path: ("api-repo"|"resolve", candidates) or (name, []) for fixed routes."""
    segs = raw_path.split("?", 1)[0].split("/")[1:]
    if not segs or segs == [""]:
        return "root", []
    if segs[0] == "api":
        if len(segs) >= 2 and segs[1] in _TYPES:
            repo_type = _TYPES[segs[1]]
            if len(segs) == 2 or (len(segs) == 3 and segs[2] == ""):
                return "list", [Target("list", repo_type, "")]
            return "api-repo", _api_candidates(repo_type, segs[2:])
        return "api:" + "/".join(segs[1:]), []
    repo_type = "models"
    rest = segs
    if segs[0] in _URL_PREFIX and len(segs) > 1:
        repo_type, rest = _URL_PREFIX[segs[0]], segs[1:]
    out: list[Target] = []
    for n in (2, 1):
        if len(rest) > n + 1 and rest[n] == "resolve":
            repo_id = _repo_id(rest[:n])
            taken = _take_revision(rest[n + 1:])
            if repo_id is None or taken is None:
                continue
            revision, path = taken
            out.append(Target("resolve", repo_type, repo_id, revision, _join_path(path)))
    return ("resolve", out) if out else ("other", [])


def _api_candidates(repo_type: RepoType, segs: list[str]) -> list[Target]:
    out: list[Target] = []
    for n in (2, 1):
        if len(segs) < n:
            continue
        repo_id = _repo_id(segs[:n])
        if repo_id is None:
            continue
        target = _api_tail(repo_type, repo_id, segs[n:])
        if target is not None:
            out.append(target)
    return out
