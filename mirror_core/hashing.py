"""The two hashes the upstream publishes for a body, computed while the bytes stream past.

LFS files are named by the sha256 of their content; regular files by git's blob sha1
(`sha1(b"blob <size>\\0" + body)`). The mirror keys every body by sha256, so regular files get
both hashes in one pass: git sha1 to check them against the upstream, sha256 to store them.
"""

from __future__ import annotations

import hashlib

from mirror_core.errors import IntegrityError


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class BodyHasher:
    """Incremental sha256 (and git blob sha1 when the size is known up front) over a body."""

    def __init__(self, size: int | None = None, *, git: bool = False) -> None:
        if git and size is None:
            raise ValueError("a git blob sha1 needs the body's size before the first byte")
        self.expected_size = size
        self.count = 0
        self._sha256 = hashlib.sha256()
        self._sha1 = hashlib.sha1(b"blob %d\0" % size) if git and size is not None else None

    def update(self, data: bytes | memoryview) -> None:
        self._sha256.update(data)
        if self._sha1 is not None:
            self._sha1.update(data)
        self.count += len(data)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def git_oid(self) -> str | None:
        return self._sha1.hexdigest() if self._sha1 is not None else None

    def verify(self, what: str, *, sha256: str | None = None, git_oid: str | None = None) -> str:
        """Raise IntegrityError unless size and the given hashes match; return the sha256."""
        if self.expected_size is not None and self.count != self.expected_size:
            raise IntegrityError(
                f"{what}: received {self.count} bytes, the upstream announced {self.expected_size}; not stored"
            )
        if sha256 is not None and self.sha256 != sha256:
            raise IntegrityError(f"{what}: sha256 {self.sha256} differs from the upstream's {sha256}; not stored")
        if git_oid is not None and self.git_oid != git_oid:
            raise IntegrityError(
                f"{what}: git blob sha1 {self.git_oid} differs from the upstream's {git_oid}; not stored"
            )
        return self.sha256
