"""Store against a real SeaweedFS: round-trips, missing objects, outages with clear errors."""

import io

import pytest
from pydantic import SecretStr

from hubmirror.embedded_s3 import free_port, start_embedded_s3
from mirror_core.errors import ConflictError, FormatError, StorageError, StorageUnavailableError
from mirror_core.layout import FORMAT_KEY
from mirror_core.store import Store
from tests.conftest import make_settings


def test_round_trips_and_missing_objects(store: Store):
    assert store.get_json(FORMAT_KEY) == {"format": "hubmirror", "version": 1}
    assert store.get_bytes("nope") is None and store.stat("nope") is None and store.open("nope") is None
    store.put_json("state/x.json", {"a": [1, 2]})
    assert store.get_json("state/x.json") == {"a": [1, 2]}
    body = bytes(range(256)) * 100_000  # 25.6 MB: multipart
    store.put_stream("blobs/big", io.BytesIO(body), len(body), part_size=5 * 1024**2)
    assert store.stat("blobs/big").size == len(body)
    response = store.open("blobs/big", offset=1000, length=300)
    try:
        assert response.read() == body[1000:1300]
    finally:
        response.close()
        response.release_conn()
    assert sorted(o.key for o in store.list("")) == [FORMAT_KEY, "blobs/big", "state/x.json"]
    store.delete("blobs/big")
    assert not store.exists("blobs/big")


def test_presigned_url_serves_the_object(store: Store):
    import urllib.request

    store.put_bytes("a/b.txt", b"presigned bytes")
    with urllib.request.urlopen(store.presigned_get("a/b.txt")) as response:
        assert response.read() == b"presigned bytes"


def test_foreign_bucket_is_refused(s3_server):
    s3_server.client().make_bucket("foreign-bucket")
    s3_server.client().put_object("foreign-bucket", FORMAT_KEY, io.BytesIO(b'{"format":"other"}'), 18)
    store = Store(make_settings(s3_server, "foreign-bucket").s3)
    with pytest.raises(FormatError, match="layout version"):
        store.ensure_bucket()


def test_wrong_credentials_say_what_to_fix(bucket_settings):
    settings = bucket_settings.model_copy(update={"s3_secret_key": SecretStr("wrong")})
    with pytest.raises(StorageError, match="HUBMIRROR_S3_SECRET_KEY"):
        Store(settings.s3).get_bytes(FORMAT_KEY)


def test_unreachable_s3_is_reported_not_hung(s3_server):
    settings = make_settings(s3_server, "anything").model_copy(
        update={"s3_endpoint": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(StorageUnavailableError, match="unreachable"):
        Store(settings.s3).stat("x")


def test_embedded_s3_stops_by_pid(tmp_path):
    server = start_embedded_s3(tmp_path / "s3")
    assert server.process.poll() is None
    server.stop()
    assert server.process.poll() is not None
    assert not (tmp_path / "s3").joinpath("weed.log").read_text() == ""


def test_conditional_put_lets_only_one_writer_win(store: Store):
    """refs.json is flipped with If-Match / If-None-Match: a writer holding a stale version loses."""
    store.put_if("repos/x/refs.json", b"first", None)
    with pytest.raises(ConflictError, match="another writer"):
        store.put_if("repos/x/refs.json", b"second creator", None)
    data, etag = store.get_with_etag("repos/x/refs.json")
    assert data == b"first"
    store.put_if("repos/x/refs.json", b"v2", etag)
    with pytest.raises(ConflictError):
        store.put_if("repos/x/refs.json", b"stale writer", etag)
    assert store.get_bytes("repos/x/refs.json") == b"v2" and store.get_with_etag("nope") is None


def test_multipart_upload_through_presigned_part_urls(store: Store, bucket_settings):
    """Parts go to presigned URLs (unsigned payload); the object appears whole, only on complete."""
    import os

    key = "blobs/multipart-test"
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1024 * 1024 + 7)]
    upload_id = store.start_upload(key)
    done = [store.upload_part(key, upload_id, n, memoryview(data)) for n, data in enumerate(parts, 1)]
    assert store.get_bytes(key) is None
    store.complete_upload(key, upload_id, done)
    assert store.get_bytes(key) == b"".join(parts)

    with pytest.raises(StorageError, match="part 1 of blobs/other.*NoSuchUpload"):
        store.upload_part("blobs/other", "no-such-upload-id", 1, b"x")
    wrong = bucket_settings.model_copy(update={"s3_secret_key": SecretStr("wrong")})
    upload_id = store.start_upload(key)
    with pytest.raises(StorageError, match="HUBMIRROR_S3_SECRET_KEY"):
        Store(wrong.s3).upload_part(key, upload_id, 1, b"x")
    store.abort_upload(key, upload_id)
