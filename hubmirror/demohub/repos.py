"""Git-like repositories of the fake hub: blobs, commits with real git object ids, refs.

The ids are computed the way git computes them (blob, tree and commit objects hashed with sha1), so
oids, tree oids and commit shas look and behave like the real Hub's: stable, 40-hex, content-derived.
Everything lives in memory except large bodies, which stay on disk and are streamed in chunks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path, PurePosixPath

LFS_EXTENSIONS = (
    ".safetensors",
    ".bin",
    ".parquet",
    ".pt",
    ".pth",
    ".h5",
    ".onnx",
    ".arrow",
    ".gguf",
    ".msgpack",
    ".ckpt",
    ".zip",
    ".gz",
    ".tar",
)
LFS_AUTO_SIZE = 10 * 1024 * 1024
CHUNK = 4 * 1024 * 1024
_HEX_RE = re.compile(r"^[0-9a-f]{7,40}$")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def wants_lfs(path: str, size: int) -> bool:
    """The rule a typical HF .gitattributes implements: weights/data extensions, or big files."""
    return path.lower().endswith(LFS_EXTENSIONS) or size >= LFS_AUTO_SIZE


@dataclass(frozen=True)
class Blob:
    """A file body: small ones in memory, large ones in a file on disk (never loaded whole)."""

    size: int
    sha256: str
    data: bytes | None = field(default=None, repr=False)
    path: Path | None = None

    @staticmethod
    def of(data: bytes) -> Blob:
        return Blob(size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data)

    @cached_property
    def git_sha1(self) -> str:
        if self.data is not None:
            return git_blob_sha1(self.data)
        digest = hashlib.sha1(b"blob %d\0" % self.size)
        for chunk in self.chunks(0, self.size):
            digest.update(chunk)
        return digest.hexdigest()

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) in chunks of at most CHUNK bytes."""
        if self.data is not None:
            for pos in range(start, end, CHUNK):
                yield self.data[pos : min(end, pos + CHUNK)]
            return
        assert self.path is not None
        with self.path.open("rb") as fh:
            fh.seek(start)
            left = end - start
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    raise OSError(f"{self.path} is shorter than its recorded size {self.size}")
                left -= len(chunk)
                yield chunk


@dataclass(frozen=True)
class RepoFile:
    """A file of one commit. `oid` is the git blob id (of the LFS pointer for LFS files)."""

    path: str
    blob: Blob
    lfs: bool
    xet: bool = False
    # Hostile upstream: `blob` is only claimed (listed with its sha256 and size); resolve serves `served`
    # instead (other bytes), or 404 when None.
    forged: bool = False
    served: Blob | None = None

    @property
    def body(self) -> Blob | None:
        """The bytes resolve and the CDN really serve for this file."""
        return self.served if self.forged else self.blob

    @property
    def size(self) -> int:
        return self.blob.size

    @property
    def pointer(self) -> bytes:
        return lfs_pointer(self.blob.sha256, self.blob.size)

    @cached_property
    def oid(self) -> str:
        return git_blob_sha1(self.pointer) if self.lfs else self.blob.git_sha1

    @property
    def xet_hash(self) -> str:
        return hashlib.sha256(b"xet:" + self.blob.sha256.encode()).hexdigest()


def _tree_sha(node: dict, out: dict[str, str], prefix: str) -> str:
    """Git tree object id of a nested {name: RepoFile | dict} node; records every directory's id."""
    entries = []
    for name, child in node.items():
        if isinstance(child, dict):
            sub = f"{prefix}{name}"
            oid = _tree_sha(child, out, sub + "/")
            out[sub] = oid
            entries.append((name + "/", b"40000 " + name.encode() + b"\0" + bytes.fromhex(oid)))
        else:
            entries.append((name, b"100644 " + name.encode() + b"\0" + bytes.fromhex(child.oid)))
    body = b"".join(raw for _, raw in sorted(entries, key=lambda e: e[0].encode()))
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()


class Commit:
    """An immutable snapshot: the full file map plus git-style metadata."""

    def __init__(
        self, files: dict[str, RepoFile], parents: tuple[str, ...], message: str, date: datetime, author: str
    ) -> None:
        self.files = dict(sorted(files.items()))
        self.parents = parents
        self.message = message
        self.date = date
        self.author = author
        stamp = int(date.timestamp())
        body = (
            f"tree {self.tree_oid}\n"
            + "".join(f"parent {p}\n" for p in parents)
            + f"author {author} <{author}@fakehub.test> {stamp} +0000\n"
            + f"committer {author} <{author}@fakehub.test> {stamp} +0000\n\n{message}\n"
        ).encode()
        self.sha = hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()

    @property
    def title(self) -> str:
        return self.message.split("\n", 1)[0]

    @cached_property
    def _trees(self) -> tuple[str, dict[str, str]]:
        root: dict = {}
        for path, entry in self.files.items():
            node = root
            *dirs, name = path.split("/")
            for d in dirs:
                node = node.setdefault(d, {})
            node[name] = entry
        dirs_out: dict[str, str] = {}
        return _tree_sha(root, dirs_out, ""), dict(sorted(dirs_out.items()))

    @property
    def tree_oid(self) -> str:
        return self._trees[0]

    @property
    def directories(self) -> dict[str, str]:
        """Every directory path of this commit -> its git tree id."""
        return self._trees[1]


@dataclass
class Repo:
    """One repository: commits by sha, refs, and the listing metadata the API reports."""

    repo_type: str  # "model" | "dataset" | "space"
    repo_id: str
    created_at: datetime
    meta: dict = field(default_factory=dict)  # likes, downloads, trendingScore, tags, card...
    gated: bool | str = False
    private: bool = False
    service_denied: bool = False  # the service token lost its access (gated: 403 GatedRepo; private: 404)
    xet: bool = False  # LFS files get Xet-style headers and xetHash like the real Hub
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    converts: dict[str, str] = field(default_factory=dict)
    pull_requests: dict[str, str] = field(default_factory=dict)
    _last_commit_maps: dict[str, dict[str, Commit]] = field(default_factory=dict, repr=False)

    @property
    def author(self) -> str:
        return self.repo_id.split("/")[0] if "/" in self.repo_id else ""

    @property
    def head(self) -> Commit:
        return self.commits[self.branches["main"]]

    def resolve(self, rev: str) -> Commit | None:
        """A branch, tag, refs/... name, full or unique short sha -> commit (None when unknown)."""
        for prefix, table in (
            ("refs/heads/", self.branches),
            ("refs/tags/", self.tags),
            ("refs/pr/", self.pull_requests),
            ("refs/convert/", self.converts),
        ):
            if rev.startswith(prefix):
                sha = table.get(rev[len(prefix) :])
                return self.commits[sha] if sha else None
        sha = self.branches.get(rev) or self.tags.get(rev)
        if sha:
            return self.commits[sha]
        if _HEX_RE.match(rev):
            if rev in self.commits:
                return self.commits[rev]
            found = [c for s, c in self.commits.items() if s.startswith(rev)]
            return found[0] if len(found) == 1 else None
        return None

    def commit(
        self,
        changes: dict[str, Blob | None],
        *,
        branch: str = "main",
        message: str = "update",
        author: str = "fakehub",
        lfs: bool | None = None,
        parent_rev: str = "main",
        replace: bool = False,
    ) -> Commit:
        """Add a commit on `branch` (created from `parent_rev` if new). None deletes a path.

        `lfs=None` decides per file by extension/size; `replace=True` starts from an empty tree.
        """
        parent_sha = self.branches.get(branch)
        if parent_sha is None and self.commits:
            base = self.resolve(parent_rev)
            if base is None:
                raise ValueError(f"unknown parent revision {parent_rev!r} for new branch {branch!r}")
            parent_sha = base.sha
        parent = self.commits[parent_sha] if parent_sha else None
        files = {} if (parent is None or replace) else dict(parent.files)
        for path, blob in changes.items():
            norm = str(PurePosixPath(path))
            if norm != path or path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"invalid path {path!r}: use a relative posix path")
            if blob is None:
                if files.pop(path, None) is None:
                    raise ValueError(f"cannot delete {path!r}: not in {branch!r}")
                continue
            is_lfs = wants_lfs(path, blob.size) if lfs is None else lfs
            files[path] = RepoFile(path, blob, lfs=is_lfs, xet=self.xet and is_lfs)
        date = (parent.date if parent else self.created_at) + timedelta(hours=1)
        new = Commit(files, (parent.sha,) if parent else (), message, date, author)
        self.commits[new.sha] = new
        self.branches[branch] = new.sha
        return new

    def history(self, commit: Commit) -> list[Commit]:
        """First-parent history, newest first."""
        out = [commit]
        while out[-1].parents:
            out.append(self.commits[out[-1].parents[0]])
        return out

    def last_commits(self, commit: Commit) -> dict[str, Commit]:
        """path (file or directory) -> the newest commit in `commit`'s history that changed it."""
        cached = self._last_commit_maps.get(commit.sha)
        if cached is not None:
            return cached
        parent = self.commits[commit.parents[0]] if commit.parents else None
        result = dict(self.last_commits(parent)) if parent else {}
        for path, entry in commit.files.items():
            if parent is None or path not in parent.files or parent.files[path].oid != entry.oid:
                result[path] = commit
                parts = path.split("/")
                for i in range(1, len(parts)):
                    result["/".join(parts[:i])] = commit
        for path in list(result):
            if path not in commit.files and path not in commit.directories:
                del result[path]
        self._last_commit_maps[commit.sha] = result
        return result


def utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)
