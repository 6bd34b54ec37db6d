"""Control endpoints under /_fakehub/ (not part of the HF contract; never counted or faulted).

They let a test change upstream (new commit, new tag), inject faults, tune the server, and read the
traffic counters and the corpus's own record of a file (the independent truth to compare against).
"""

from __future__ import annotations

import base64
import dataclasses
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubmirror.demohub.app import DEFAULT_CONFIG, error
from hubmirror.demohub.faults import Fault
from hubmirror.demohub.repos import Blob, Repo, utc

if TYPE_CHECKING:
    from hubmirror.demohub.app import Routes


def file_record(routes: Routes, repo_type: str, repo_id: str, path: str, revision: str) -> Response:
    repo = routes.corpus.get(repo_type, repo_id)
    commit = repo.resolve(revision) if repo else None
    entry = commit.files.get(path) if commit else None
    if commit is None or entry is None:
        return error(404, None, f"no {path!r} at {revision!r} in {repo_type} {repo_id!r}")
    return JSONResponse(
        {
            "path": path,
            "size": entry.size,
            "sha256": entry.blob.sha256,
            "oid": entry.oid,
            "lfs": entry.lfs,
            "xet": entry.xet,
            "commit": commit.sha,
        }
    )


def repo_record(routes: Routes, repo_type: str, repo_id: str) -> Response:
    repo = routes.corpus.get(repo_type, repo_id)
    if repo is None:
        return error(404, None, f"no {repo_type} {repo_id!r}")
    return JSONResponse(
        {
            "repo_type": repo_type,
            "repo_id": repo_id,
            "branches": repo.branches,
            "tags": repo.tags,
            "converts": repo.converts,
            "pull_requests": repo.pull_requests,
            "gated": repo.gated,
            "private": repo.private,
            "files": {
                p: {"size": e.size, "sha256": e.blob.sha256, "oid": e.oid, "lfs": e.lfs}
                for p, e in repo.head.files.items()
            },
        }
    )


def set_access(routes: Routes, data: dict) -> Response:
    """Flip a repo's gating at runtime: `gated`, `private`, and `service_denied` (the service token loses access)."""
    repo = routes.corpus.get(data["repo_type"], data["repo_id"])
    if repo is None:
        return error(404, None, f"no {data['repo_type']} {data['repo_id']!r}")
    for key in ("gated", "private", "service_denied"):
        if key in data:
            setattr(repo, key, data[key])
    return JSONResponse({"gated": repo.gated, "private": repo.private, "service_denied": repo.service_denied})


def forge_lfs(routes: Routes, data: dict) -> Response:
    """Hostile upstream: commit an LFS file listed with a foreign `sha256`/`size` (another repo's body) while
    resolve serves `served` (base64: other bytes) or 404 (`served` null)."""
    repo = routes.corpus.get(data["repo_type"], data["repo_id"])
    if repo is None:
        return error(404, None, f"no {data['repo_type']} {data['repo_id']!r}")
    path = data["path"]
    served = None if data.get("served") is None else Blob.of(base64.b64decode(data["served"]))
    commit = repo.commit({path: Blob(size=int(data["size"]), sha256=data["sha256"])}, lfs=True,
                         branch=data.get("branch", "main"), message=data.get("message", "add weights"))
    commit.files[path] = dataclasses.replace(commit.files[path], forged=True, served=served)
    return JSONResponse({"sha": commit.sha})


async def admin(routes: Routes, request: Request, segs: list[str]) -> Response:
    traffic = routes.traffic
    action = segs[0] if segs else ""
    method = request.method
    q = request.query_params
    if action == "health":
        return JSONResponse({"ok": True, "repos": len(routes.corpus.repos)})
    if action == "reset" and method == "POST":
        traffic.reset(DEFAULT_CONFIG)
        return JSONResponse({"ok": True})
    if action == "faults":
        if method == "PUT":
            traffic.faults[:] = [Fault(**rule) for rule in await request.json()]
        elif method == "POST":
            traffic.faults.append(Fault(**await request.json()))
        return JSONResponse([f.to_dict() for f in traffic.faults])
    if action == "config":
        if method == "POST":
            changes = await request.json()
            unknown = set(changes) - set(DEFAULT_CONFIG)
            if unknown:
                return error(
                    400, None, f"unknown config keys {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}"
                )
            traffic.config.update(changes)
        return JSONResponse(traffic.config)
    if action == "counters":
        return JSONResponse(traffic.counters)
    if action == "requests":
        return JSONResponse(traffic.log)
    if action == "file":
        return file_record(routes, q["repo_type"], q["repo_id"], q["path"], q.get("revision", "main"))
    if action == "repo":
        return repo_record(routes, q["repo_type"], q["repo_id"])
    if action == "commit" and method == "POST":
        data = await request.json()
        repo = routes.corpus.get(data["repo_type"], data["repo_id"])
        if repo is None:
            return error(404, None, f"no {data['repo_type']} {data['repo_id']!r}")
        changes = {p: None if b is None else Blob.of(base64.b64decode(b)) for p, b in data["files"].items()}
        commit = repo.commit(
            changes,
            branch=data.get("branch", "main"),
            message=data.get("message", "update"),
            lfs=data.get("lfs"),
            parent_rev=data.get("parent", "main"),
        )
        return JSONResponse({"sha": commit.sha})
    if action == "create-repo" and method == "POST":
        data = await request.json()
        if routes.corpus.get(data["repo_type"], data["repo_id"]) is not None:
            return error(409, None, f"{data['repo_type']} {data['repo_id']!r} already exists")
        repo = Repo(
            data["repo_type"],
            data["repo_id"],
            utc(2025, 1, 1),
            meta=data.get("meta") or {},
            gated=data.get("gated", False),
            private=data.get("private", False),
        )
        changes = {p: Blob.of(base64.b64decode(b)) for p, b in data["files"].items()}
        commit = repo.commit(changes, message=data.get("message", "Initial commit"), lfs=data.get("lfs"))
        routes.corpus.add(repo)
        return JSONResponse({"sha": commit.sha})
    if action == "access" and method == "POST":
        return set_access(routes, await request.json())
    if action == "forge-lfs" and method == "POST":
        return forge_lfs(routes, await request.json())
    if action == "meta" and method == "POST":
        data = await request.json()
        repo = routes.corpus.get(data["repo_type"], data["repo_id"])
        if repo is None:
            return error(404, None, f"no {data['repo_type']} {data['repo_id']!r}")
        repo.meta.update(data["meta"])
        return JSONResponse(repo.meta)
    if action == "tag" and method == "POST":
        data = await request.json()
        repo = routes.corpus.get(data["repo_type"], data["repo_id"])
        tagged = repo.resolve(data.get("revision", "main")) if repo else None
        if repo is None or tagged is None:
            return error(404, None, f"no revision {data.get('revision')!r} in {data['repo_id']!r}")
        repo.tags[data["tag"]] = tagged.sha
        return JSONResponse({"sha": tagged.sha})
    return error(404, None, f"unknown admin endpoint {'/'.join(segs)!r} ({method})")
