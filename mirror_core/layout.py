"""Bucket layout, version 1: the only code that builds object keys.

Every key is built here from validated parts, so a hostile repo id, path or revision can never
address an object outside its place (see ARCHITECTURE.md, "Bucket layout, version 1").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mirror_core.errors import InvalidPathError, InvalidRepoIdError, InvalidRevisionError

LAYOUT_VERSION = 1
FORMAT_KEY = "_format.json"
FORMAT_MARKER = {"format": "hubmirror", "version": LAYOUT_VERSION}

RepoType = Literal["models", "datasets", "spaces"]
REPO_TYPES: tuple[RepoType, ...] = ("models", "datasets", "spaces")
_TYPE_ALIASES: dict[str, RepoType] = {
    "model": "models", "models": "models",
    "dataset": "datasets", "datasets": "datasets",
    "space": "spaces", "spaces": "spaces",
}
# URL prefix the HF clients put before a repo id in /resolve URLs.
URL_PREFIXES: dict[RepoType, str] = {"models": "", "datasets": "datasets/", "spaces": "spaces/"}

# Canonical single-segment ids (`gpt2`) live under this namespace. `~` is outside the HF id
# alphabet ([\w.-]), so no real namespace can ever clash with it.
CANONICAL_NAMESPACE = "~"

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_REPO_ID_LENGTH = 96
MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
MAX_REVISION_LENGTH = 255


def repo_type(value: str) -> RepoType:
    """Normalise `model`/`models`/... to the plural used in keys and API URLs."""
    try:
        return _TYPE_ALIASES[value]
    except KeyError:
        raise InvalidRepoIdError(
            f"unknown repo type {value!r}: use one of model, dataset, space"
        ) from None


@dataclass(frozen=True, order=True)
class RepoRef:
    """A validated repository identity: type plus HF repo id."""

    type: RepoType
    namespace: str | None
    name: str

    @classmethod
    def parse(cls, repo_id: str, type: str = "models") -> RepoRef:
        return cls(repo_type(type), *split_repo_id(repo_id))

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def singular_type(self) -> str:
        return self.type[:-1]

    def __str__(self) -> str:
        return f"{self.singular_type}:{self.repo_id}"


def split_repo_id(repo_id: str) -> tuple[str | None, str]:
    """Validate an HF repo id (`name` or `namespace/name`) and split it."""
    if not isinstance(repo_id, str) or not repo_id:
        raise InvalidRepoIdError("empty repo id: give `name` or `namespace/name`, e.g. `openai-community/gpt2`")
    if len(repo_id) > MAX_REPO_ID_LENGTH:
        raise InvalidRepoIdError(
            f"repo id {repo_id[:40]!r}... is {len(repo_id)} characters; the Hub allows at most {MAX_REPO_ID_LENGTH}"
        )
    parts = repo_id.split("/")
    if len(parts) > 2:
        raise InvalidRepoIdError(
            f"repo id {repo_id!r} has {len(parts) - 1} slashes: use `name` or `namespace/name`"
        )
    for part in parts:
        if not _NAME_RE.match(part):
            raise InvalidRepoIdError(
                f"repo id {repo_id!r} may only contain letters, digits, '-', '_' and '.' "
                "in `namespace/name`"
            )
        if part.startswith(("-", ".")) or part.endswith(("-", ".")) or ".." in part or "--" in part:
            raise InvalidRepoIdError(
                f"repo id {repo_id!r}: a part may not start or end with '-' or '.', nor contain '..' or '--'"
            )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def validate_path(path: str) -> str:
    """Validate a file path inside a repo (`sub/dir/file.bin`) and return it unchanged."""
    if not isinstance(path, str) or not path:
        raise InvalidPathError("empty file path: give a path inside the repo such as `config.json`")
    shown = path[:80]
    if "\x00" in path:
        raise InvalidPathError(f"file path {shown!r} contains a NUL byte")
    if "\\" in path:
        raise InvalidPathError(f"file path {shown!r} contains a backslash: use '/' between folders")
    if path.startswith("/"):
        raise InvalidPathError(f"file path {shown!r} is absolute: give it relative to the repo root")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise InvalidPathError(f"file path {shown!r}... is longer than {MAX_PATH_BYTES} bytes")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPathError(
                f"file path {shown!r} has an empty, '.' or '..' segment: paths may not leave or skip folders"
            )
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidPathError(f"file path {shown!r} has a name longer than {MAX_SEGMENT_BYTES} bytes")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in segment):
            raise InvalidPathError(f"file path {shown!r} contains a control character")
    return path


def validate_revision(revision: str) -> str:
    """Validate a revision (branch, tag, `refs/pr/1`, `refs/convert/parquet`, or commit sha)."""
    if not isinstance(revision, str) or not revision:
        raise InvalidRevisionError("empty revision: give a branch, tag or commit sha such as `main`")
    shown = revision[:80]
    if len(revision) > MAX_REVISION_LENGTH:
        raise InvalidRevisionError(f"revision {shown!r}... is longer than {MAX_REVISION_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in revision) or any(c in revision for c in " ~^:?*[\\"):
        raise InvalidRevisionError(f"revision {shown!r} contains characters git does not allow in a ref name")
    if revision.startswith("/") or revision.endswith("/") or "//" in revision or ".." in revision:
        raise InvalidRevisionError(f"revision {shown!r} is not a valid ref name ('..', '//' or a leading '/')")
    return revision


def is_commit_sha(value: str) -> bool:
    return bool(_SHA1_RE.match(value))


def validate_commit_sha(sha: str) -> str:
    if not isinstance(sha, str) or not _SHA1_RE.match(sha):
        raise InvalidRevisionError(f"{str(sha)[:80]!r} is not a commit sha (40 lowercase hex digits)")
    return sha


def validate_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        raise InvalidPathError(f"{str(sha256)[:80]!r} is not a sha256 (64 lowercase hex digits)")
    return sha256


# -- keys ---------------------------------------------------------------------------------------

BLOBS_PREFIX = "blobs/sha256/"
REPOS_PREFIX = "repos/"
RUNS_PREFIX = "state/runs/"
TRENDING_PREFIX = "state/trending/"
CATALOG_PREFIX = "state/catalog/"
TRENDING_LATEST = TRENDING_PREFIX + "latest.json"
CATALOG_LATEST = CATALOG_PREFIX + "latest.json"
# Where a sampled verify left off, so the next run continues and every body is re-hashed in time.
VERIFY_CURSOR = "state/verify/cursor.json"


def blob_key(sha256: str) -> str:
    validate_sha256(sha256)
    return f"{BLOBS_PREFIX}{sha256[:2]}/{sha256[2:4]}/{sha256}"


def sha256_from_blob_key(key: str) -> str:
    """Inverse of blob_key, for listings (GC, verify)."""
    if not key.startswith(BLOBS_PREFIX):
        raise InvalidPathError(f"{key!r} is not a blob key")
    sha256 = key.rsplit("/", 1)[-1]
    if blob_key(sha256) != key:
        raise InvalidPathError(f"{key!r} is not a well-formed blob key")
    return sha256


def repos_prefix(type: RepoType | None = None) -> str:
    return REPOS_PREFIX if type is None else f"{REPOS_PREFIX}{repo_type(type)}/"


def repo_prefix(repo: RepoRef) -> str:
    namespace = repo.namespace if repo.namespace is not None else CANONICAL_NAMESPACE
    return f"{REPOS_PREFIX}{repo.type}/{namespace}/{repo.name}/"


def repo_from_key(key: str) -> RepoRef:
    """Recover the repo from any key under `repos/` (for listings)."""
    parts = key.split("/")
    if len(parts) < 5 or parts[0] != "repos":
        raise InvalidPathError(f"{key!r} is not a repo key")
    namespace = None if parts[2] == CANONICAL_NAMESPACE else parts[2]
    repo_id = f"{namespace}/{parts[3]}" if namespace else parts[3]
    return RepoRef.parse(repo_id, parts[1])


def refs_key(repo: RepoRef) -> str:
    return repo_prefix(repo) + "refs.json"


def commits_prefix(repo: RepoRef) -> str:
    return repo_prefix(repo) + "commits/"


def commit_key(repo: RepoRef, sha: str) -> str:
    return f"{commits_prefix(repo)}{validate_commit_sha(sha)}.json"


def repo_meta_key(repo: RepoRef) -> str:
    """The repo's popularity snapshot (downloads, likes, ...): mutable, kept apart from the immutable manifests."""
    return repo_prefix(repo) + "meta.json"


def unmirrored_key(repo: RepoRef, sha: str) -> str:
    """Which files of a commit have no body in the bucket (left out by allow/ignore patterns)."""
    return f"{repo_prefix(repo)}unmirrored/{validate_commit_sha(sha)}.json"


def sha_from_commit_key(key: str) -> str:
    return validate_commit_sha(key.rsplit("/", 1)[-1].removesuffix(".json"))


_RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.:+-]{1,200}$")


def run_report_key(run_id: str, when: datetime) -> str:
    if not _RUN_ID_RE.match(run_id):
        raise InvalidPathError(f"run id {run_id!r} may only contain letters, digits and _.:+-")
    return f"{RUNS_PREFIX}{when:%Y/%m/%d}/{run_id}.json"


def _timestamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def trending_snapshot_key(when: datetime) -> str:
    return f"{TRENDING_PREFIX}{_timestamp(when)}.json"


def catalog_key(when: datetime) -> str:
    return f"{CATALOG_PREFIX}{_timestamp(when)}.sqlite"
