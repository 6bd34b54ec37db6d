"""`/resolve/{rev}/{path}`: file metadata on HEAD, bodies on GET (proxied or redirected).

Headers follow HF_API_CONTRACT.md §1.2: `X-Repo-Commit`, `ETag` (git blob sha1, or sha256 for LFS,
also as `X-Linked-Etag`), `X-Linked-Size`, an exact `Content-Length` on HEAD, `Accept-Ranges`, and
never an Xet header. Proxied full GETs are checked while streaming and the last chunk is held back until
the check passes, so a corrupt body ends in a broken connection, never in wrong bytes on disk (BodyCheck
says against what).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import mimetypes
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import anyio
import xxhash
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from mirror_core.errors import StorageError
from mirror_core.layout import blob_key
from mirror_core.manifest import FileEntry
from serve import metrics
from serve.context import AppContext, OpenRepo
from serve.errors import EntryNotFound, NotMirrored, RangeNotSatisfiable, RevisionNotFound, ServiceUnavailable
from serve.repo_state import LRU, ManifestView
from serve.s3_body import S3Body

log = logging.getLogger("hubmirror.serve.resolve")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) for a single `bytes=` range; None = send the whole body.

    Ends past EOF are clamped; a start at or past EOF is a 416. Malformed or multi-range headers are
    ignored (RFC 9110 allows it; HF clients never send them).
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == "") or (not first and not last):
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size - 1)


def _content_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or "application/octet-stream"


def file_headers(sha: str, f: FileEntry) -> dict[str, str]:
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{f.etag}"',
        "X-Linked-Size": str(f.size),
        "Accept-Ranges": "bytes",
        "Content-Type": _content_type(f.path),
    }
    if f.lfs is not None:
        headers["X-Linked-Etag"] = f'"{f.sha256}"'
    return headers


async def lookup(ctx: AppContext, opened: OpenRepo) -> tuple[str, FileEntry, ManifestView]:
    target = opened.target
    assert target.revision is not None
    sha = await ctx.state.resolve(opened.repo, opened.entry, target.revision)
    view = await ctx.state.manifest(opened.repo, sha)
    if view is None:
        raise RevisionNotFound(target.revision)
    f = view.files.get(target.path) if target.path else None
    if f is None:
        raise EntryNotFound(target.path, target.revision, sha)
    if view.unmirrored and f.path in await ctx.state.unmirrored(opened.repo, view):
        raise NotMirrored(target.path, target.revision)
    return sha, f, view


def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class RawResponse:
    """A pre-encoded answer: the 200 headers of a file are built once per (commit, path) and reused."""

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.status_code, self.raw_headers, self.body = status_code, raw_headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


async def resolve_file(ctx: AppContext, request: Request, opened: OpenRepo) -> RawResponse | BlobStream:
    sha, f, view = await lookup(ctx, opened)
    head = request.method == "HEAD"
    settings = ctx.settings
    if settings.mode == "redirect" and f.size >= settings.redirect_min_size:
        try:
            name = quote(f.path.rsplit("/", 1)[-1], safe="")
            location = ctx.store.presigned_get(
                blob_key(f.sha256), timedelta(seconds=settings.presign_seconds),
                # Blobs are stored under their hash: give browsers (and `curl -OJ`) the file's own name.
                response_headers={"response-content-disposition": f"attachment; filename*=UTF-8''{name}"})
        except StorageError as exc:
            log.warning("cannot presign %s: %s", f.sha256, exc)  # the detail names the endpoint: log only
            raise ServiceUnavailable("cannot presign a download URL; retry later") from exc
        if not head:
            metrics.BYTES.labels("redirect").inc(f.size)
        headers = {**file_headers(sha, f), "Location": location, "Content-Length": "0"}
        return RawResponse(302, _encode(headers))
    full = view.headers.get(f.path)
    if full is None:
        full = view.headers[f.path] = _encode({**file_headers(sha, f), "Content-Length": str(f.size)})
    if head:
        return RawResponse(200, full)
    byte_range = parse_range(request.headers.get("range"), f.size)
    if byte_range is None:
        mode = settings.verify_full_gets
        check = None if mode == "off" else BodyCheck(f.sha256, ctx.state.fingerprints, mode)
        return BlobStream(ctx, f, 0, f.size, 200, full, check)
    start, end = byte_range
    headers = {**file_headers(sha, f), "Content-Length": str(end - start + 1),
               "Content-Range": f"bytes {start}-{end}/{f.size}"}
    return BlobStream(ctx, f, start, end - start + 1, 206, _encode(headers))  # a range cannot be checked


class BodyCheck:
    """What one full proxied GET is checked against, and what it leaves for the next GET of the body.

    sha256 costs 0.65 CPU seconds per GiB even with SHA-NI, more than all the copying a proxy does, so
    hashing every GET would halve proxy throughput on a machine whose cores S3 and the clients share.
    Mode "fast" (the default) hashes a body's first full GET in this worker with sha256, takes the xxh3-64
    fingerprint of the same bytes (26 GiB/s), and once the sha256 matched remembers the fingerprint:
    later full GETs are checked against it, so every byte served is still compared with bytes whose
    sha256 was proven. A mismatch forgets it. xxh3 catches corruption, not forgery; whoever can write
    the bucket can rewrite manifests too. Mode "sha256" hashes every full GET.
    """

    def __init__(self, sha256: str, fingerprints: LRU[str, int], mode: str) -> None:
        self.sha256, self.fingerprints = sha256, fingerprints
        self.known = fingerprints.get(sha256) if mode == "fast" else None
        self.hasher = hashlib.sha256() if self.known is None else None
        self.fingerprint = xxhash.xxh3_64() if mode == "fast" else None

    def start(self, chunk: memoryview, limiter: anyio.CapacityLimiter) -> asyncio.Future | None:
        """Check a chunk: xxh3 alone at once (it is quick enough for the event loop); sha256 (0.65 ms per
        MiB) in a thread, returning its future so the next chunk is read meanwhile (await it first)."""
        if self.hasher is None:
            self.update(chunk)
            return None
        return asyncio.ensure_future(anyio.to_thread.run_sync(self.update, chunk, limiter=limiter))

    def update(self, chunk: bytes | memoryview) -> None:
        """Both hashes release the GIL on large chunks."""
        if self.hasher is not None:
            self.hasher.update(chunk)
        if self.fingerprint is not None:
            self.fingerprint.update(chunk)

    def passed(self) -> bool:
        if self.hasher is not None:
            if self.hasher.hexdigest() != self.sha256:
                return False
            if self.fingerprint is not None:
                self.fingerprints.put(self.sha256, self.fingerprint.intdigest())
            return True
        assert self.fingerprint is not None
        if self.fingerprint.intdigest() == self.known:
            return True
        self.fingerprints.pop(self.sha256)  # the next GET proves the bytes with sha256 again
        return False


class BlobStream:
    """An ASGI response streaming a blob range from S3 in large chunks, in constant memory."""

    def __init__(self, ctx: AppContext, f: FileEntry, offset: int, length: int, status: int,
                 raw_headers: list[tuple[bytes, bytes]], check: BodyCheck | None = None) -> None:
        self.ctx, self.f, self.offset, self.length = ctx, f, offset, length
        self.status_code, self.raw_headers, self.check = status, raw_headers, check
        self.body: Any = None

    async def prepare(self) -> None:
        """Open the S3 body before the status line goes out, so a failure can still be a clean 503."""
        if self.length == 0:
            return
        ctx, f = self.ctx, self.f
        self.body = await ctx.state.run(self._open)
        if self.body is None:
            flag_body(ctx, f, "missing")
            raise ServiceUnavailable(f"the body of {f.path} is missing from the object store; a repair was requested",
                                     retry_after=60)

    def _open(self) -> Any:
        """In a worker thread: the S3 body, made an S3Body when it is streamed in chunks."""
        ctx, f = self.ctx, self.f
        whole = self.offset == 0 and self.length == f.size  # no Range header: S3 servers serve that cheaper
        body = ctx.store.open(blob_key(f.sha256), self.offset, 0 if whole else self.length)
        if body is None or self.length <= ctx.settings.chunk_size:
            return body
        source = S3Body(body, ctx.state.stream_limiter)
        try:
            source.take_socket(ctx.settings.chunk_size)
        except Exception as exc:
            source.close()
            raise StorageError(f"reading {f.sha256} failed right after its headers: {exc}") from exc
        return source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx, f = self.ctx, self.f
        raw_headers = self.raw_headers
        body = self.body
        if body is None:
            await send({"type": "http.response.start", "status": self.status_code, "headers": raw_headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        check = self.check
        if not isinstance(body, S3Body):
            await self._send_small(send, body, check)
            return
        buffers = [memoryview(bytearray(ctx.settings.chunk_size)) for _ in range(_BUFFERS)]
        # uvicorn's `send` returns quietly once the client is gone: without a watch, a client that hangs up
        # at once would still have serve read the whole body from S3, a cheap way to load the bucket.
        gone = asyncio.ensure_future(_disconnect(receive))
        sent = 0
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": raw_headers})
            pending = hashing = None
            for i in itertools.count():
                if gone.done():
                    return
                buffer = buffers[i % len(buffers)]
                try:
                    n = await body.fill(buffer)
                except Exception as exc:  # S3 died mid-body: the client must see a broken transfer
                    log.error("object store read of %s failed after %d bytes: %r", f.sha256, sent, exc)
                    return
                if not n:
                    break
                if hashing is not None:
                    await hashing
                if check is not None:
                    hashing = check.start(buffer[:n], ctx.state.stream_limiter)
                if pending is not None:
                    await send({"type": "http.response.body", "body": pending, "more_body": True})
                    sent += len(pending)
                pending = buffer[:n]
            if hashing is not None:
                await hashing
            last = pending or b""
            if not self._complete(sent + len(last), check):
                return  # returning before more_body=False makes the server drop the connection
            await send({"type": "http.response.body", "body": last, "more_body": False})
            sent += len(last)
        finally:
            gone.cancel()
            body.close()
            metrics.BYTES.labels("proxy").inc(sent)

    async def _send_small(self, send: Send, body: Any, check: BodyCheck | None) -> None:
        def read_all() -> bytes:
            try:
                data = body.read(decode_content=False)  # stored bytes as they are, no decoder copy
            finally:
                body.close()
                body.release_conn()
            if check is not None:
                check.update(data)
            return data

        try:
            data = await anyio.to_thread.run_sync(read_all, limiter=self.ctx.state.limiter)
        except Exception as exc:
            log.error("object store read of %s failed: %s", self.f.sha256, exc)
            data = b""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if not self._complete(len(data), check):
            return
        await send({"type": "http.response.body", "body": data, "more_body": False})
        metrics.BYTES.labels("proxy").inc(len(data))

    def _complete(self, total: int, check: BodyCheck | None) -> bool:
        """Whether the body read from S3 is whole and (when checked) the one the manifest names."""
        if total != self.length:
            log.error("object store returned %d bytes of %s, expected %d", total, self.f.sha256, self.length)
            flag_body(self.ctx, self.f, "truncated")
            return False
        if check is not None and not check.passed():
            flag_body(self.ctx, self.f, "sha256 mismatch" if check.hasher is not None else "fingerprint mismatch")
            return False
        return True


async def _disconnect(receive: Receive) -> None:
    """Returns once the client has gone (a GET's request body, empty, is received first)."""
    while (await receive())["type"] != "http.disconnect":
        pass


# Chunk i of a proxied body is read into buffer i % _BUFFERS. The chunk read last is held back until the
# next one is read (the last of all until the check passed), and uvicorn waits for the socket to drain
# before it writes, not after: a chunk handed to `send` may be in the transport's buffer until two more
# were sent. So four buffers: one filling, one held back, two maybe not yet written.
_BUFFERS = 4


def flag_body(ctx: AppContext, f: FileEntry, problem: str) -> None:
    """serve may not write the bucket: count it, log it, and ask Airflow for a repair."""
    metrics.INTEGRITY.inc()
    record: dict[str, Any] = {"event": "body_integrity_failure", "problem": problem, "sha256": f.sha256,
                              "path": f.path, "size": f.size}
    record["repair_requested"] = ctx.trigger.request_repair([f.sha256])
    log.error(json.dumps(record))
