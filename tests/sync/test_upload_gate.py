"""The hash gate of the multipart upload, against the real SeaweedFS: a wrong body never appears."""

from __future__ import annotations

import io
import os

import pytest

from mirror_core.errors import IntegrityError
from mirror_core.hashing import BodyHasher, sha256_hex
from mirror_core.layout import blob_key
from mirror_core.store import Store
from mirror_core.transfer import buffers_in_use, upload_verified

PART = 5 * 1024 * 1024


def _body(size: int) -> bytes:
    return os.urandom(size)


def test_verified_multipart_upload_appears_complete(store: Store) -> None:
    body = _body(2 * PART + 12345)
    key = blob_key(sha256_hex(body))
    hasher = BodyHasher(len(body))
    upload_verified(store, key, io.BytesIO(body).readinto, hasher,
                    lambda h: h.verify("body", sha256=sha256_hex(body)), PART)
    assert store.get_bytes(key) == body
    assert hasher.count == len(body)


def test_mismatching_body_is_aborted_and_never_visible(store: Store) -> None:
    body = _body(2 * PART + 7)
    claimed = sha256_hex(body[:-1] + bytes([body[-1] ^ 1]))  # the upstream's hash of a different body
    key = blob_key(claimed)
    with pytest.raises(IntegrityError):
        upload_verified(store, key, io.BytesIO(body).readinto, BodyHasher(len(body)),
                        lambda h: h.verify("body", sha256=claimed), PART)
    assert store.stat(key) is None
    assert buffers_in_use() == 0  # every part buffer went back to the pool


def test_reader_failure_aborts_upload(store: Store) -> None:
    body = _body(3 * PART)
    key = blob_key(sha256_hex(body))
    source = io.BytesIO(body)

    def fill(view: memoryview) -> int:
        if source.tell() >= 2 * PART:
            raise ConnectionError("dropped for good")
        return source.readinto(view)

    with pytest.raises(ConnectionError):
        upload_verified(store, key, fill, BodyHasher(len(body)), lambda h: h.verify("b", sha256=sha256_hex(body)),
                        PART)
    assert store.stat(key) is None
    assert buffers_in_use() == 0
