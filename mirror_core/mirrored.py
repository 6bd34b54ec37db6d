"""Which bodies of a commit are in the bucket, kept apart from the commit's (whole, immutable) manifest.

`commits/<sha>.json` lists every file of the upstream commit whoever synced it and with whatever
allow/ignore patterns, so the same sha always has the same manifest. Patterns only decide which LFS bodies
are fetched: a regular file's body is always fetched, because its sha256 (the manifest's body key) is only
known from its content, and regular files are small. The LFS files left out are named in
`repos/<type>/<ns>/<name>/unmirrored/<sha>.json`; no such object means every body is stored. A later sync
whose patterns select more fetches what is missing and shrinks (or deletes) the record.
"""

from __future__ import annotations

from datetime import datetime

from huggingface_hub.utils import filter_repo_objects
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mirror_core.layout import RepoRef, unmirrored_key
from mirror_core.manifest import utcnow
from mirror_core.store import Store


class Unmirrored(BaseModel):
    """unmirrored/<sha>.json: the manifest paths whose bodies the bucket lacks, and the patterns that left them out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = 1
    sha: str
    paths: list[str]
    allow_patterns: list[str] | None = None
    ignore_patterns: list[str] | None = None
    updated_at: datetime = Field(default_factory=utcnow)


def selected(path: str, allow_patterns: list[str] | None, ignore_patterns: list[str] | None) -> bool:
    """Whether the patterns select a path (huggingface_hub's own matching, as snapshot_download applies it)."""
    return bool(list(filter_repo_objects([path], allow_patterns=allow_patterns, ignore_patterns=ignore_patterns)))


def read_unmirrored(store: Store, repo: RepoRef, sha: str) -> frozenset[str]:
    """Paths of the commit whose bodies are not stored (empty: all are, or the record is unreadable)."""
    data = store.get_bytes(unmirrored_key(repo, sha))
    if data is None:
        return frozenset()
    try:
        return frozenset(Unmirrored.model_validate_json(data).paths)
    except ValidationError:
        return frozenset()


def write_unmirrored(store: Store, repo: RepoRef, sha: str, paths: set[str] | frozenset[str],
                     allow_patterns: list[str] | None, ignore_patterns: list[str] | None) -> None:
    """Record the paths left out; with none left, delete the record (the commit is complete)."""
    key = unmirrored_key(repo, sha)
    if not paths:
        store.delete(key)
        return
    record = Unmirrored(sha=sha, paths=sorted(paths), allow_patterns=allow_patterns, ignore_patterns=ignore_patterns)
    store.put_bytes(key, record.model_dump_json().encode(), "application/json")
