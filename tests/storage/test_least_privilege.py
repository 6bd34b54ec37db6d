"""The embedded S3's identities (issue 10, item 8): secrets are random per start and kept 0600; the read-only
identity serve gets can read, list and sign presigned URLs, but SeaweedFS refuses its writes and deletes."""

from __future__ import annotations

import stat
import uuid

import httpx
import pytest

from hubmirror.embedded_s3 import EmbeddedS3, start_embedded_s3
from mirror_core.errors import StorageError
from mirror_core.settings import load_settings
from mirror_core.store import Store


def _store(s3: EmbeddedS3, bucket: str, read_only: bool) -> Store:
    env = s3.env(read_only=read_only)
    return Store(load_settings(s3_endpoint=s3.endpoint, s3_access_key=env["HUBMIRROR_S3_ACCESS_KEY"],
                               s3_secret_key=env["HUBMIRROR_S3_SECRET_KEY"], s3_bucket=bucket,
                               s3_region="us-east-1").s3)


def test_identity_file_is_private_and_secrets_are_random_per_start(s3_server: EmbeddedS3, tmp_path) -> None:
    identities = s3_server.data_dir / "s3-identities.json"
    assert stat.S_IMODE(identities.stat().st_mode) == 0o600
    assert s3_server.secret_key not in repr(s3_server) and s3_server.read_secret_key not in repr(s3_server)
    other = start_embedded_s3(tmp_path / "s3")
    try:
        assert stat.S_IMODE((other.data_dir / "s3-identities.json").stat().st_mode) == 0o600
        assert other.secret_key != s3_server.secret_key
        assert other.read_secret_key != s3_server.read_secret_key
        assert other.read_secret_key != other.secret_key and len(other.read_secret_key) >= 32
    finally:
        other.stop()


def test_read_only_identity_reads_and_presigns_but_cannot_write_or_delete(s3_server: EmbeddedS3) -> None:
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    writer = _store(s3_server, bucket, read_only=False)
    writer.ensure_bucket()
    writer.put_bytes("blobs/x", b"body")
    reader = _store(s3_server, bucket, read_only=True)
    assert reader.get_bytes("blobs/x") == b"body"
    assert [o.key for o in reader.list("blobs/")] == ["blobs/x"]
    assert httpx.get(reader.presigned_get("blobs/x"), timeout=10).content == b"body"

    with pytest.raises(StorageError, match="AccessDenied"):
        reader.put_bytes("blobs/y", b"forged")
    with pytest.raises(StorageError, match="AccessDenied"):
        reader.put_bytes("blobs/x", b"overwritten")
    with pytest.raises(StorageError, match="AccessDenied"):
        reader.delete("blobs/x")
    assert writer.get_bytes("blobs/x") == b"body" and writer.stat("blobs/y") is None
