"""The objects a sync publishes: immutable commit manifests and the mutable refs.json.

Both are pydantic models so that writers and readers (sync, serve, verify, gc) agree on one
shape, and so that a malformed object in the bucket fails loudly instead of half-parsing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mirror_core.errors import CorruptObjectError
from mirror_core.layout import (
    RepoRef,
    RepoType,
    is_commit_sha,
    validate_commit_sha,
    validate_path,
    validate_revision,
    validate_sha256,
)

_GIT_OID_RE = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA_RE = re.compile(r"^[0-9a-f]{7,39}$")


class RefKind(StrEnum):
    """The ref tables of refs.json (each value is a field of `Refs`); `prefix` is the git ref it stands for."""

    BRANCHES = "branches"
    TAGS = "tags"
    CONVERTS = "converts"
    PULL_REQUESTS = "pull_requests"

    @property
    def prefix(self) -> str:
        return _PREFIXES[self]


_PREFIXES = {RefKind.BRANCHES: "refs/heads/", RefKind.TAGS: "refs/tags/", RefKind.CONVERTS: "refs/convert/",
             RefKind.PULL_REQUESTS: "refs/pr/"}
REF_KINDS = tuple(RefKind)


M = TypeVar("M", bound=BaseModel)


def utcnow() -> datetime:
    return datetime.now(UTC)


def hf_date(when: datetime) -> str:
    """A date as the HF clients parse it: `%Y-%m-%dT%H:%M:%S.fffZ` (the `Z` is mandatory)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def first_error(exc: ValidationError) -> str:
    """The first problem of a validation error, as `where: what`."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "document"
    return f"{where}: {err['msg']}"


def _parse(model: type[M], data: bytes | str, key: str | None, what: str) -> M:
    """A stored object parsed; CorruptObjectError naming its key if it is not a valid `what`."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise CorruptObjectError(f"{key or 'stored object'} is not a valid {what}: {first_error(exc)}") from None


class LfsInfo(_Model):
    pointer_size: int = Field(ge=0)


class LastCommit(_Model):
    """The newest commit that touched a path (tree `expand=true`), as the upstream reported it at sync time."""

    id: str
    title: str = ""
    date: str | None = None

    _sha = field_validator("id")(lambda cls, v: validate_commit_sha(v))


class FileEntry(_Model):
    """One file of a commit. `sha256` names the body in blobs/; `oid` is git's blob id."""

    path: str
    size: int = Field(ge=0)
    sha256: str
    oid: str
    lfs: LfsInfo | None = None
    last_commit: LastCommit | None = None  # optional: manifests written before it was recorded have none

    _path = field_validator("path")(lambda cls, v: validate_path(v))
    _sha = field_validator("sha256")(lambda cls, v: validate_sha256(v))

    @field_validator("oid")
    @classmethod
    def _oid(cls, v: str) -> str:
        if not _GIT_OID_RE.match(v):
            raise ValueError(f"{v!r} is not a git object id (40 lowercase hex digits)")
        return v

    @property
    def etag(self) -> str:
        """What HF clients use as the cache blob name: sha256 for LFS, git blob sha1 otherwise."""
        return self.sha256 if self.lfs else self.oid


class DirEntry(_Model):
    path: str
    oid: str
    last_commit: LastCommit | None = None

    _path = field_validator("path")(lambda cls, v: validate_path(v))


class CommitManifest(_Model):
    """Everything serve needs to answer for one upstream commit, written once, never changed."""

    format: int = 1
    repo_type: RepoType
    repo_id: str
    sha: str
    info: dict[str, Any] = Field(default_factory=dict)
    commits: list[dict[str, Any]] = Field(default_factory=list)
    files: list[FileEntry]
    directories: list[DirEntry] = Field(default_factory=list)
    upstream: str
    created_at: datetime = Field(default_factory=utcnow)

    _sha = field_validator("sha")(lambda cls, v: validate_commit_sha(v))

    @property
    def repo(self) -> RepoRef:
        return RepoRef.parse(self.repo_id, self.repo_type)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileEntry | None:
        return self.files_by_path().get(path)

    def files_by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, data: bytes | str, key: str | None = None) -> CommitManifest:
        return _parse(cls, data, key, "manifest")


class Refs(_Model):
    """refs.json: the one mutable object of a repo. Ref names map to published commit shas."""

    branches: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    converts: dict[str, str] = Field(default_factory=dict)
    pull_requests: dict[str, str] = Field(default_factory=dict)
    upstream: str
    updated_at: datetime = Field(default_factory=utcnow)
    # Access as the upstream reported it when this was published (same PUT as the refs, so serve never has to
    # guess from a missing manifest). None: written by a version that did not record it, so unknown.
    private: bool | None = None
    gated: bool | str | None = None  # False, "auto" or "manual", like the Hub

    @field_validator(*REF_KINDS)
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        for name, sha in v.items():
            validate_revision(name)
            validate_commit_sha(sha)
        return v

    @field_validator("gated")
    @classmethod
    def _gated(cls, v: bool | str | None) -> bool | str | None:
        """Not gated is False, however it was spelled; readers then test plain truth."""
        return False if v in ("", "false") else v

    @property
    def restricted(self) -> bool | None:
        """True if private or gated upstream; None if not recorded (readers must then fail closed)."""
        if self.private is None or self.gated is None:
            return None
        return self.private or bool(self.gated)

    def default_revision(self) -> tuple[str, str] | None:
        """(name, sha) a bare repo URL means: `main`, else the first branch, tag, convert or PR by name."""
        if "main" in self.branches:
            return "main", self.branches["main"]
        for kind in REF_KINDS:
            table = getattr(self, kind)
            if table:
                name = min(table)
                return name, table[name]
        return None

    def all_shas(self) -> set[str]:
        return {sha for kind in REF_KINDS for sha in getattr(self, kind).values()}

    def resolve(self, revision: str) -> str | None:
        """The sha a revision names, by HF's rules; None if no ref by that name is published.

        Full shas are returned as given (the caller checks that a manifest exists); short shas
        are matched against the published refs only (see `resolve_short_sha` for the rest).
        """
        revision = validate_revision(revision)
        if is_commit_sha(revision):
            return revision
        for kind in REF_KINDS:
            if revision.startswith(kind.prefix):
                return getattr(self, kind).get(revision.removeprefix(kind.prefix))
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        if _SHORT_SHA_RE.match(revision):
            return resolve_short_sha(revision, self.all_shas())
        return None

    def with_ref(self, kind: RefKind, name: str, sha: str) -> Refs:
        """A copy with one ref set."""
        table = dict(getattr(self, kind))
        table[name] = validate_commit_sha(sha)
        return self.model_copy(update={kind: table, "updated_at": utcnow()})

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, data: bytes | str, key: str | None = None) -> Refs:
        return _parse(cls, data, key, "refs.json")


def resolve_short_sha(prefix: str, shas: set[str] | list[str]) -> str | None:
    """The one sha starting with `prefix`, or None if none or several do."""
    matches = {s for s in shas if s.startswith(prefix)}
    return matches.pop() if len(matches) == 1 else None


def ref_kind(revision: str) -> tuple[RefKind, str]:
    """Split a ref name into (kind, short name) as stored in refs.json."""
    for kind in REF_KINDS:
        if revision.startswith(kind.prefix):
            return kind, revision.removeprefix(kind.prefix)
    return RefKind.BRANCHES, revision
