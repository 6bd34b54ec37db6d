"""S3 access for hubmirror, on the minio SDK.

One small surface (get/put/stat/list/delete/stream/presign) over which the writers (sync, verify,
gc) and the reader (serve) work. S3 failures become StorageError / StorageUnavailableError with
a message an operator can act on; a missing object is `None`, not an exception.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.error import S3Error
from minio.helpers import DictType

from mirror_core.errors import ConflictError, FormatError, StorageError, StorageUnavailableError
from mirror_core.layout import FORMAT_KEY, FORMAT_MARKER, LAYOUT_VERSION
from mirror_core.settings import S3Settings

_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchVersion"}
_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict"}
T = TypeVar("T")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: datetime | None


def _client(endpoint: str, s3: S3Settings, pool: urllib3.PoolManager | None = None) -> Minio:
    url = urlsplit(endpoint)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise StorageError(f"S3 endpoint {endpoint!r} must look like http://host:port")
    return Minio(url.netloc, access_key=s3.access_key, secret_key=s3.secret_key.get_secret_value(),
                 secure=url.scheme == "https", region=s3.region, http_client=pool)


class Store:
    """The hubmirror bucket."""

    def __init__(self, s3: S3Settings, max_connections: int = 32, *, timeout: urllib3.Timeout | None = None,
                 retries: urllib3.Retry | None = None) -> None:
        self.settings = s3
        self.bucket = s3.bucket
        pool = urllib3.PoolManager(
            timeout=timeout or urllib3.Timeout(connect=5, read=120), maxsize=max_connections,
            retries=retries or urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        )
        self.client = _client(s3.endpoint, s3, pool)
        self._pool = pool
        # Presigned URLs are signed for the host clients will use (often a public name of the same S3).
        self._presigner = _client(s3.public_endpoint, s3) if s3.public_endpoint else self.client

    # -- errors ------------------------------------------------------------------------------

    def _fail(self, exc: Exception, what: str) -> StorageError:
        if isinstance(exc, S3Error):
            if exc.code == "NoSuchBucket":
                return StorageError(
                    f"bucket {self.bucket!r} does not exist at {self.settings.endpoint}: "
                    "create it or set HUBMIRROR_S3_BUCKET"
                )
            if exc.code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                return StorageError(
                    f"S3 refused {what} ({exc.code}): check HUBMIRROR_S3_ACCESS_KEY / HUBMIRROR_S3_SECRET_KEY"
                )
            return StorageError(f"S3 error during {what}: {exc.code}: {exc.message}")
        return StorageUnavailableError(
            f"S3 at {self.settings.endpoint} is unreachable during {what} ({type(exc).__name__}: {exc}); "
            "check that it runs and HUBMIRROR_S3_ENDPOINT points at it"
        )

    # -- bucket ------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket and the format marker if missing; refuse a foreign bucket."""
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
        except Exception as exc:
            raise self._fail(exc, "bucket creation") from exc
        marker = self.get_json(FORMAT_KEY)
        if marker is None:
            self.put_json(FORMAT_KEY, FORMAT_MARKER)
        else:
            self._check_marker(marker)

    def check_format(self) -> None:
        self._check_marker(self.get_json(FORMAT_KEY))

    def _check_marker(self, marker: Any) -> None:
        if marker is None:
            raise FormatError(f"bucket {self.bucket!r} has no {FORMAT_KEY}: run `hubmirror sync` once to set it up")
        if marker.get("format") != "hubmirror" or marker.get("version") != LAYOUT_VERSION:
            raise FormatError(
                f"bucket {self.bucket!r} holds {marker!r}; this hubmirror reads layout version {LAYOUT_VERSION}"
            )

    # -- objects -----------------------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo | None:
        st = self._unless_missing(f"stat {key}", lambda: self.client.stat_object(self.bucket, key))
        if st is None:
            return None
        return ObjectInfo(key, st.size or 0, (st.etag or "").strip('"'), st.last_modified)

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def get_bytes(self, key: str) -> bytes | None:
        got = self.get_with_etag(key)
        return None if got is None else got[0]

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        """An object's bytes and the ETag they were read with, for a later `put_if` on that version."""
        response = self.open(key)
        if response is None:
            return None
        try:
            return response.read(decode_content=False), response.headers.get("ETag", "")
        except Exception as exc:
            raise self._fail(exc, f"read {key}") from exc
        finally:
            response.close()
            response.release_conn()

    def put_if(self, key: str, data: bytes, etag: str | None, content_type: str = "application/json") -> None:
        """Write `key` only if it still has this ETag (None: only if it does not exist yet).

        S3 conditional writes (If-Match / If-None-Match) make the check and the write one step, so two
        writers of the same key cannot both succeed. Raises ConflictError when the condition fails.
        """
        condition = {"If-Match": etag} if etag is not None else {"If-None-Match": "*"}
        try:
            self.client._put_object(self.bucket, key, data, {**condition, "Content-Type": content_type})
        except S3Error as exc:
            if exc.code in _CONFLICT:
                raise ConflictError(f"{key} was changed by another writer ({exc.code})") from None
            raise self._fail(exc, f"upload {key}") from exc
        except Exception as exc:
            raise self._fail(exc, f"upload {key}") from exc

    def get_json(self, key: str) -> Any | None:
        data = self.get_bytes(key)
        return None if data is None else json.loads(data)

    def open(self, key: str, offset: int = 0, length: int = 0) -> urllib3.BaseHTTPResponse | None:
        """A streaming body (caller closes and releases it); `length=0` reads to the end."""
        return self._unless_missing(f"read {key}",
                                    lambda: self.client.get_object(self.bucket, key, offset=offset, length=length))

    def _unless_missing(self, what: str, fn: Callable[[], T]) -> T | None:
        """`fn()`, or None if the object does not exist; any other failure is a StorageError."""
        try:
            return fn()
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise self._fail(exc, what) from exc
        except Exception as exc:
            raise self._fail(exc, what) from exc

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        return self.put_stream(key, io.BytesIO(data), len(data), content_type)

    def put_json(self, key: str, value: Any) -> str:
        data = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
        return self.put_bytes(key, data, "application/json")

    def put_stream(self, key: str, stream: BinaryIO, length: int = -1,
                   content_type: str = "application/octet-stream", part_size: int = 16 * 1024**2,
                   parallel: int = 3) -> str:
        """Upload a stream (multipart above part_size); the object appears only once complete."""
        try:
            result = self.client.put_object(self.bucket, key, stream, length, content_type=content_type,
                                            part_size=part_size if length < 0 or length > part_size else 0,
                                            num_parallel_uploads=parallel)
        except Exception as exc:
            raise self._fail(exc, f"upload {key}") from exc
        return (result.etag or "").strip('"')

    def delete(self, key: str) -> None:
        try:
            self.client.remove_object(self.bucket, key)
        except Exception as exc:
            raise self._fail(exc, f"delete {key}") from exc

    def list(self, prefix: str, recursive: bool = True) -> Iterator[ObjectInfo]:
        try:
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=recursive):
                if obj.object_name is None or obj.is_dir:
                    continue
                yield ObjectInfo(obj.object_name, obj.size or 0, (obj.etag or "").strip('"'), obj.last_modified)
        except Exception as exc:
            raise self._fail(exc, f"list {prefix}") from exc

    def list_uploads(self, prefix: str) -> Iterator[tuple[str, str, datetime | None]]:
        """Unfinished multipart uploads under `prefix`: (key, upload id, initiated)."""
        key_marker = upload_marker = None
        try:
            while True:
                page = self.client._list_multipart_uploads(self.bucket, prefix=prefix, key_marker=key_marker,
                                                           upload_id_marker=upload_marker)
                for upload in page.uploads:
                    if upload.upload_id is not None:
                        yield upload.object_name, upload.upload_id, upload.initiated_time
                if not page.is_truncated:
                    return
                key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker
        except Exception as exc:
            raise self._fail(exc, f"list unfinished uploads under {prefix}") from exc

    # -- multipart uploads (the verified upload pipeline's parts; the object appears only on complete) ----

    def start_upload(self, key: str, content_type: str = "application/octet-stream") -> str:
        """Begin a multipart upload of `key`; its upload id."""
        try:
            return self.client._create_multipart_upload(self.bucket, key, {"Content-Type": content_type})
        except Exception as exc:
            raise self._fail(exc, f"start the upload of {key}") from exc

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes | memoryview) -> Part:
        """PUT one part to a presigned URL: its payload goes unsigned (UNSIGNED-PAYLOAD).

        minio signs each part with the sha256 of its bytes over http (and adds Content-MD5 over
        https): 0.65-1.4 CPU seconds per GiB on top of the body's own sha256, which the sync already
        computed and checks against the upstream, and which readers check again (serve, verify).
        """
        what = f"upload of part {number} of {key}"
        try:
            url = self.client.get_presigned_url("PUT", self.bucket, key, expires=timedelta(hours=1),
                                                extra_query_params={"partNumber": str(number), "uploadId": upload_id})
            # urllib3 sends any buffer (its annotation says bytes): a memoryview part is not copied.
            response = self._pool.request("PUT", url, body=data,  # type: ignore[arg-type]
                                          headers={"Content-Length": str(len(data))}, preload_content=True)
        except Exception as exc:
            raise self._fail(exc, what) from exc
        etag = response.headers.get("ETag", "").strip('"')
        if response.status == 200 and etag:
            return Part(number, etag)
        try:
            error = S3Error.fromxml(response)
        except Exception:
            raise StorageError(f"S3 answered {response.status} without an ETag to the {what}") from None
        raise self._fail(error, what)

    def complete_upload(self, key: str, upload_id: str, parts: Iterable[Part]) -> None:
        """Make the object visible from its uploaded parts (in part-number order)."""
        try:
            self.client._complete_multipart_upload(self.bucket, key, upload_id, list(parts))
        except Exception as exc:
            raise self._fail(exc, f"completing the upload of {key}") from exc

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self.client._abort_multipart_upload(self.bucket, key, upload_id)
        except Exception as exc:
            raise self._fail(exc, f"abort the upload of {key}") from exc

    def presigned_get(self, key: str, expires: timedelta = timedelta(minutes=10),
                      response_headers: DictType | None = None) -> str:
        try:
            return self._presigner.presigned_get_object(self.bucket, key, expires=expires,
                                                        response_headers=response_headers)
        except Exception as exc:
            raise self._fail(exc, f"presign {key}") from exc
