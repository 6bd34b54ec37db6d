"""JSON shapes of the Hub API (contract §3-§5), built from the fake hub's repositories."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from hubmirror.demohub.repos import Commit, Repo, RepoFile

API_PLURAL = {"model": "models", "dataset": "datasets", "space": "spaces"}
SORT_KEYS = ("trendingScore", "likes", "downloads", "lastModified", "createdAt")


def hf_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def object_id(repo: Repo) -> str:
    return hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24]


def sibling(entry: RepoFile, blobs: bool) -> dict:
    out: dict = {"rfilename": entry.path}
    if blobs:
        out.update(size=entry.size, blobId=entry.oid)
        if entry.lfs:
            out["lfs"] = {"sha256": entry.blob.sha256, "size": entry.size, "pointerSize": len(entry.pointer)}
    return out


def _config(commit: Commit) -> dict | None:
    entry = commit.files.get("config.json")
    if entry is None or entry.blob.data is None:
        return None
    try:
        return json.loads(entry.blob.data)
    except ValueError:
        return None


def info(repo: Repo, commit: Commit, *, blobs: bool = False, security: bool = False) -> dict:
    """The full repo-info object for `commit` (model_info / dataset_info / space_info)."""
    meta = repo.meta
    out: dict = {
        "_id": object_id(repo),
        "id": repo.repo_id,
        "author": repo.author or None,
        "sha": commit.sha,
        "lastModified": hf_date(commit.date),
        "createdAt": hf_date(repo.created_at),
        "private": repo.private,
        "gated": repo.gated,
        "disabled": False,
        "tags": meta.get("tags", []),
        "likes": meta.get("likes", 0),
        "trendingScore": meta.get("trendingScore", 0),
        "cardData": meta.get("card", {}),
        "siblings": [sibling(e, blobs) for e in commit.files.values()],
        "usedStorage": sum(e.size for e in commit.files.values()),
    }
    if repo.repo_type == "model":
        out.update(
            modelId=repo.repo_id,
            downloads=meta.get("downloads", 0),
            library_name=meta.get("library_name"),
            pipeline_tag=meta.get("pipeline_tag"),
            config=_config(commit),
            spaces=[],
        )
    elif repo.repo_type == "dataset":
        out.update(
            downloads=meta.get("downloads", 0),
            description=meta.get("description", ""),
            citation="",
            paperswithcode_id=None,
        )
    else:
        out.update(
            sdk=meta.get("sdk"),
            subdomain=repo.repo_id.replace("/", "-"),
            models=[],
            datasets=[],
            runtime={"stage": "RUNNING", "hardware": {"current": "cpu-basic", "requested": "cpu-basic"}},
        )
    if security and repo.repo_type == "model":
        out["securityRepoStatus"] = {"scansDone": True, "filesWithIssues": []}
    return out


def only(obj: dict, keys: list[str]) -> dict:
    """`expand=`: just the requested keys, plus the identifiers every client needs."""
    return {k: v for k, v in obj.items() if k in keys or k in ("_id", "id")}


LIST_KEYS = {
    "model": (
        "_id",
        "id",
        "likes",
        "trendingScore",
        "private",
        "downloads",
        "tags",
        "pipeline_tag",
        "library_name",
        "createdAt",
        "modelId",
    ),
    "dataset": (
        "_id",
        "id",
        "author",
        "sha",
        "lastModified",
        "private",
        "gated",
        "disabled",
        "likes",
        "downloads",
        "tags",
        "trendingScore",
        "createdAt",
        "description",
    ),
    "space": ("_id", "id", "likes", "trendingScore", "private", "sdk", "tags", "createdAt"),
}


def list_item(repo: Repo, *, full: bool, card: bool, config: bool, expand: list[str]) -> dict:
    whole = info(repo, repo.head)
    if expand:
        return only(whole, expand)
    if full:
        return whole
    item = {k: whole[k] for k in LIST_KEYS[repo.repo_type] if k in whole}
    if card:
        item["cardData"] = whole["cardData"]
    if config and "config" in whole:
        item["config"] = whole["config"]
    return item


def sort_value(repo: Repo, key: str) -> float | str:
    if key == "lastModified":
        return hf_date(repo.head.date)
    if key == "createdAt":
        return hf_date(repo.created_at)
    return repo.meta.get(key, 0) or 0


def matches(
    repo: Repo,
    *,
    search: list[str],
    author: str | None,
    filters: list[str],
    pipeline_tag: str | None,
    gated: str | None,
) -> bool:
    rid = repo.repo_id.lower()
    if any(s.lower() not in rid for s in search):
        return False
    if author is not None and repo.author.lower() != author.lower():
        return False
    tags = set(repo.meta.get("tags", []))
    if any(f not in tags for f in filters):
        return False
    if pipeline_tag is not None and repo.meta.get("pipeline_tag") != pipeline_tag:
        return False
    if gated is not None and bool(repo.gated) != (gated.lower() == "true"):
        return False
    return True


def last_commit(commit: Commit | None) -> dict | None:
    if commit is None:
        return None
    return {"id": commit.sha, "title": commit.title, "date": hf_date(commit.date)}


def file_entry(repo: Repo, commit: Commit, entry: RepoFile, expand: bool) -> dict:
    out: dict = {"type": "file", "oid": entry.oid, "size": entry.size, "path": entry.path}
    if entry.lfs:
        out["lfs"] = {"oid": entry.blob.sha256, "size": entry.size, "pointerSize": len(entry.pointer)}
    if entry.xet:
        out["xetHash"] = entry.xet_hash
    if expand:
        out["lastCommit"] = last_commit(repo.last_commits(commit).get(entry.path))
        out["securityFileStatus"] = {
            "status": "safe",
            "avScan": {"status": "safe"},
            "pickleImportScan": {"status": "unscanned"},
        }
    return out


def dir_entry(repo: Repo, commit: Commit, path: str, expand: bool) -> dict:
    out: dict = {"type": "directory", "oid": commit.directories[path], "path": path}
    if expand:
        out["lastCommit"] = last_commit(repo.last_commits(commit).get(path))
    return out


def tree(repo: Repo, commit: Commit, path: str, *, recursive: bool, expand: bool) -> list[dict]:
    """Entries under `path` ("" = root): children only, or all descendants when recursive."""
    prefix = f"{path}/" if path else ""

    def wanted(p: str) -> bool:
        return p.startswith(prefix) and (recursive or "/" not in p[len(prefix) :])

    dirs = [d for d in commit.directories if wanted(d)]
    files = [p for p in commit.files if wanted(p)]
    if recursive:
        order = sorted([(p, True) for p in dirs] + [(p, False) for p in files])
    else:
        order = [(p, True) for p in sorted(dirs)] + [(p, False) for p in sorted(files)]
    return [
        dir_entry(repo, commit, p, expand) if is_dir else file_entry(repo, commit, commit.files[p], expand)
        for p, is_dir in order
    ]


def commit_item(commit: Commit, formatted: bool) -> dict:
    body = commit.message.split("\n", 1)[1].strip() if "\n" in commit.message else ""
    out: dict[str, Any] = {
        "id": commit.sha,
        "title": commit.title,
        "message": body,
        "date": hf_date(commit.date),
        "authors": [{"user": commit.author}],
    }
    if formatted:
        out["formatted"] = {"title": commit.title, "message": body}
    return out


def refs(repo: Repo, include_prs: bool) -> dict:
    def items(table: dict[str, str], kind: str) -> list[dict]:
        return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": s} for n, s in sorted(table.items())]

    out = {
        "branches": items(repo.branches, "heads"),
        "converts": items(repo.converts, "convert"),
        "tags": items(repo.tags, "tags"),
    }
    if include_prs:
        out["pullRequests"] = items(repo.pull_requests, "pr")
    return out
