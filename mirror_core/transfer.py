"""Transfer engines: the only way a file body enters the bucket, always verified before it is visible.

A body is fetched through the upstream's `resolve/<sha>/<path>` URL by `bodies.BodyClient` (redirects
only to allowed hosts, the token only on the upstream's own origin, signed URLs reused). Bodies whose
sha256 the upstream publishes (LFS) are multipart-uploaded straight to their final `blob_key` while
they stream in, and the upload is completed only if the streamed hash matches; otherwise it is
aborted, so a wrong body never appears. Regular files are hashed (git blob sha1 and sha256) before
being put. Two engines:

- `stream`: a few connections fetch part-sized ranges; each part is uploaded as soon as it arrives
  while the parts are hashed in order, so download, hashing and upload overlap. A dropped
  connection resumes its range with `Range`; a file is resolved once and its signed CDN URL reused
  for every range until it expires or the CDN refuses it (then resolved again); a server that
  ignores Range gets one sequential stream instead. Memory is bounded by a process-wide pool of
  part buffers, whatever the file size and however many files run at once; no temp files.
- `hf_transfer`: parallel ranged download into a temp file (Rust; needs disk for the whole file),
  then the same hash-gated parallel multipart upload from that file. Download and upload do not
  overlap; hf_transfer runs in a child process (it holds the GIL while it downloads); if it fails,
  the stream engine takes over. It is handed only a URL the
  redirect rules allowed, with the token only if that URL is on the upstream's origin.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO, Protocol, cast

from minio.datatypes import Part

from mirror_core.bodies import RANGE_CONNECTIONS, BodyClient, RangeNotSupported
from mirror_core.errors import HubmirrorError, IntegrityError, StorageError, UpstreamError
from mirror_core.hashing import BodyHasher
from mirror_core.layout import RepoRef, blob_key, validate_path
from mirror_core.settings import Settings
from mirror_core.store import Store
from mirror_core.upstream import Upstream

UPLOAD_WORKERS = 4
BUFFER_BUDGET = 128 * 1024**2  # part buffers held at once by the whole process, all files together
INTEGRITY_ATTEMPTS = 2  # a body that fails its hash is fetched once more before the file fails
log = logging.getLogger(__name__)


class FileMeta(Protocol):
    """What a body fetch needs: an upstream tree entry (UpstreamFile) or a manifest FileEntry."""

    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def oid(self) -> str: ...


@dataclass(frozen=True)
class FetchResult:
    sha256: str
    size: int
    bytes_fetched: int
    reused: bool


# -- bounded part buffers ------------------------------------------------------------------------

class BufferPool:
    """A fixed number of part-sized buffers shared by every transfer of the process (the memory cap)."""

    def __init__(self, part_size: int, budget: int = BUFFER_BUDGET) -> None:
        self.part_size = part_size
        self.count = max(3, budget // part_size)
        self._free: list[bytearray] = []
        self._slots = threading.BoundedSemaphore(self.count)
        self._lock = threading.Lock()
        self.in_use = 0

    def acquire(self, cancelled: Callable[[], bool]) -> bytearray:
        while not self._slots.acquire(timeout=0.2):
            if cancelled():
                raise _Cancelled()
        with self._lock:
            self.in_use += 1
            return self._free.pop() if self._free else bytearray(self.part_size)

    def try_acquire(self) -> bytearray | None:
        """A buffer if one is free right now, else None (for prefetching without blocking)."""
        if not self._slots.acquire(blocking=False):
            return None
        with self._lock:
            self.in_use += 1
            return self._free.pop() if self._free else bytearray(self.part_size)

    def release(self, buf: bytearray) -> None:
        with self._lock:
            self.in_use -= 1
            self._free.append(buf)
        self._slots.release()


class _Cancelled(Exception):
    pass


_POOLS: dict[int, BufferPool] = {}
_POOLS_LOCK = threading.Lock()


def buffers_in_use() -> int:
    """Part buffers currently lent out by every pool (0 when no transfer runs: nothing leaked)."""
    with _POOLS_LOCK:
        return sum(pool.in_use for pool in _POOLS.values())


def buffer_pool(part_size: int) -> BufferPool:
    with _POOLS_LOCK:
        if part_size not in _POOLS:
            _POOLS[part_size] = BufferPool(part_size)
        return _POOLS[part_size]


# -- hash-gated multipart upload ----------------------------------------------------------------

class _PartUploader:
    """Parts go to the final key in parallel; the object appears only if `complete()` is called."""

    def __init__(self, store: Store, key: str, workers: int = UPLOAD_WORKERS) -> None:
        self.store, self.key = store, key
        self.upload_id = store.start_upload(key)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="hubmirror-part")
        self.futures: list[Future[Part]] = []
        self.error: BaseException | None = None

    def put(self, number: int, data: memoryview, release: Callable[[], None]) -> None:
        def task() -> Part:
            try:
                return self.store.upload_part(self.key, self.upload_id, number, data)
            except BaseException as exc:
                self.error = exc
                raise
            finally:
                release()

        future = self.pool.submit(task)
        # A part cancelled by abort() never runs its `finally`: give its buffer back here instead.
        future.add_done_callback(lambda f: release() if f.cancelled() else None)
        self.futures.append(future)

    def complete(self) -> None:
        """Make the object visible; a failed part or completion is a StorageError."""
        try:
            self.store.complete_upload(self.key, self.upload_id, [f.result() for f in self.futures])
        finally:
            self.pool.shutdown(wait=True)

    def abort(self) -> None:
        for future in self.futures:
            future.cancel()
        self.pool.shutdown(wait=True)
        with contextlib.suppress(StorageError):  # an unfinished upload is invisible; GC of uploads can clean it
            self.store.abort_upload(self.key, self.upload_id)


_END = object()


def upload_verified(store: Store, key: str, fill: Callable[[memoryview], int], hasher: BodyHasher,
                    check: Callable[[BodyHasher], None], part_size: int) -> None:
    """Read the body with `fill` into part buffers, hash in order, upload parts in parallel, and
    complete the multipart upload only if `check(hasher)` passes (it raises otherwise)."""
    pool = buffer_pool(part_size)
    uploader = _PartUploader(store, key)
    hashed: queue.Queue[Any] = queue.Queue(maxsize=2)
    hash_error: list[BaseException] = []
    stopped = threading.Event()  # the reader gave up: queued parts are dropped, not uploaded

    def failed() -> bool:
        return uploader.error is not None or bool(hash_error) or stopped.is_set()

    def hash_then_upload() -> None:
        try:
            while True:
                item = hashed.get()
                if item is _END:
                    return
                number, buf, view = item
                if failed():
                    pool.release(buf)
                    continue
                hasher.update(view)
                uploader.put(number, view, partial(pool.release, buf))
        except BaseException as exc:  # noqa: BLE001 - handed to the reader thread below
            hash_error.append(exc)

    worker = threading.Thread(target=hash_then_upload, name="hubmirror-hash", daemon=True)
    worker.start()
    completed = False
    try:
        number = 0
        while True:
            buf = pool.acquire(failed)
            view = memoryview(buf)
            filled = 0
            try:
                while filled < part_size:
                    n = fill(view[filled:])
                    if n == 0:
                        break
                    filled += n
            except BaseException:
                pool.release(buf)
                raise
            if filled == 0 and number > 0:
                pool.release(buf)
                break
            number += 1
            hashed.put((number, buf, view[:filled]))
            if filled < part_size or failed():
                break
        hashed.put(_END)
        worker.join()
        if hash_error:
            raise hash_error[0]
        if uploader.error is None:  # else complete() reports the S3 failure, not a short hash
            check(hasher)
        uploader.complete()
        completed = True
    except _Cancelled:
        cause = uploader.error or (hash_error[0] if hash_error else None)
        if isinstance(cause, HubmirrorError):
            raise cause from None
        raise StorageError(f"S3: upload of {key} failed ({type(cause).__name__}: {cause})") from cause
    finally:
        if not completed:
            stopped.set()
            if worker.is_alive():
                hashed.put(_END)
                worker.join()
            uploader.abort()


class _ChunkReader:
    """A `fill(view)` over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.rest = memoryview(b"")

    def fill(self, view: memoryview) -> int:
        n = 0
        while n < len(view):
            if not self.rest:
                chunk = next(self.chunks, None)
                if chunk is None:
                    break
                self.rest = memoryview(chunk)
            k = min(len(self.rest), len(view) - n)
            view[n:n + k] = self.rest[:k]
            self.rest = self.rest[k:]
            n += k
        return n


# -- engines -----------------------------------------------------------------------------------

class Transfer:
    """Fetches verified bodies into the bucket for one sync (shares connections and buffers)."""

    def __init__(self, settings: Settings, store: Store, upstream: Upstream) -> None:
        self.settings = settings
        self.store = store
        self.upstream = upstream
        self.client = BodyClient(settings, upstream)
        self.part_size = settings.transfer.part_size

    def close(self) -> None:
        self.client.close()

    def engine_for(self, size: int, lfs: bool) -> str:
        engine = self.settings.transfer.engine
        if engine == "auto":
            return "hf_transfer" if lfs and size >= self.settings.transfer.hf_transfer_threshold else "stream"
        return engine

    def fetch(self, repo: RepoRef, sha: str, meta: FileMeta, *, known_sha256: str | None = None,
              overwrite: bool = False, reuse: bool = True,
              on_bytes: Callable[[int], None] | None = None) -> FetchResult:
        """Make sure the body of `meta` is in the bucket, verified; fetch it only if it is missing.

        `known_sha256` is the content hash of a regular file learnt from an earlier manifest (same git
        oid), which lets a present body be reused without downloading it. `overwrite` re-fetches even
        if a blob exists (repair of a corrupt body). `reuse=False` downloads and verifies even if a blob of
        that sha256 is stored (the upstream's sha256 alone does not prove this repo has those bytes).
        """
        validate_path(meta.path)
        lfs = bool(getattr(meta, "lfs", None))
        sha256 = getattr(meta, "sha256", None) or known_sha256
        if sha256 and reuse and not overwrite:
            present = self.store.stat(blob_key(sha256))
            if present is not None and present.size == meta.size:
                return FetchResult(sha256, meta.size, 0, True)
        last: IntegrityError | None = None
        counter = _Counter(on_bytes)  # every byte received, failed attempts included
        try:
            for _ in range(INTEGRITY_ATTEMPTS):
                try:
                    if sha256 and meta.size > self.part_size:
                        self._fetch_multipart(repo, sha, meta, sha256, lfs, counter)
                        return FetchResult(sha256, meta.size, counter.total, False)
                    got = self._fetch_whole(repo, sha, meta, sha256, lfs, counter, overwrite)
                    return FetchResult(got, meta.size, counter.total, False)
                except IntegrityError as exc:
                    last = exc
        finally:
            self.client.forget(repo, sha, meta.path)
        assert last is not None
        raise last

    def _check(self, what: str, meta: FileMeta, sha256: str | None, lfs: bool) -> Callable[[BodyHasher], None]:
        def check(hasher: BodyHasher) -> None:
            hasher.verify(what, sha256=sha256, git_oid=None if lfs else meta.oid)
        return check

    def _fetch_multipart(self, repo: RepoRef, sha: str, meta: FileMeta, sha256: str, lfs: bool,
                         counter: _Counter) -> None:
        what = f"{repo}@{sha[:12]}/{meta.path}"
        key = blob_key(sha256)
        check = self._check(what, meta, sha256, lfs)
        if self.engine_for(meta.size, lfs) == "hf_transfer":
            path = self._hf_transfer_download(repo, sha, meta, counter)
            if path is not None:
                try:
                    with open(path, "rb") as fh:
                        upload_verified(self.store, key, fh.readinto, BodyHasher(meta.size, git=not lfs), check,
                                        self.part_size)
                finally:
                    os.unlink(path)
                return
        try:
            self._fetch_ranged(repo, sha, meta, key, check, lfs, counter)
            return
        except RangeNotSupported:
            pass  # one sequential stream, resumed from where it breaks
        chunks = self.client.iter_body(repo, sha, meta.path, meta.size, on_bytes=counter)
        upload_verified(self.store, key, _ChunkReader(chunks).fill, BodyHasher(meta.size, git=not lfs), check,
                        self.part_size)

    def _fetch_ranged(self, repo: RepoRef, sha: str, meta: FileMeta, key: str,
                      check: Callable[[BodyHasher], None], lfs: bool, counter: _Counter) -> None:
        """Part-sized ranged GETs over a few connections; each part is uploaded as soon as it arrives and
        hashed in order, and the multipart upload completes only if the whole body matches.

        A fetch blocks for a buffer only when it has none in flight, so files sharing the process-wide
        buffer pool can never wait on each other.
        """
        size, part = meta.size, self.part_size
        count = -(-size // part)
        pool = buffer_pool(part)
        hasher = BodyHasher(size, git=not lfs)
        stop = threading.Event()
        uploader = _PartUploader(self.store, key)
        fetchers = ThreadPoolExecutor(min(RANGE_CONNECTIONS, count), thread_name_prefix="hubmirror-range")
        pending: dict[int, tuple[Future[memoryview], bytearray]] = {}

        def fetch(index: int, buf: bytearray) -> memoryview:
            first, end = index * part, min(size, (index + 1) * part)
            view = memoryview(buf)[:end - first]
            filled = 0
            for chunk in self.client.iter_body(repo, sha, meta.path, size, first, counter, end):
                if stop.is_set():
                    raise _Cancelled()
                view[filled:filled + len(chunk)] = chunk
                filled += len(chunk)
            return view

        completed = False
        try:
            queued = 0
            for index in range(count):
                while queued < count and len(pending) < RANGE_CONNECTIONS:
                    buf = pool.try_acquire() if pending else pool.acquire(lambda: uploader.error is not None)
                    if buf is None:
                        break
                    pending[queued] = (fetchers.submit(fetch, queued, buf), buf)
                    queued += 1
                future, buf = pending.pop(index)
                try:
                    view = future.result()
                except BaseException:
                    pool.release(buf)
                    raise
                hasher.update(view)
                uploader.put(index + 1, view, partial(pool.release, buf))
                if uploader.error is not None:
                    break
            if uploader.error is None:  # else complete() reports the S3 failure, not a short hash
                check(hasher)
            uploader.complete()
            completed = True
        except _Cancelled:
            raise StorageError(f"S3: upload of {key} failed ({uploader.error})") from uploader.error
        finally:
            stop.set()
            fetchers.shutdown(wait=True, cancel_futures=True)
            for _, buf in pending.values():
                pool.release(buf)
            if not completed:
                uploader.abort()

    def _hf_transfer_download(self, repo: RepoRef, sha: str, meta: FileMeta, counter: _Counter) -> str | None:
        """Parallel ranged download to a temp file; None if hf_transfer failed (the caller streams instead)."""
        # final_url follows redirects only to allowed hosts and adds the token only on the upstream's origin,
        # so hf_transfer never sees a host the rules refused nor the token off the origin.
        url, headers = self.client.final_url(repo, sha, meta.path)
        headers["User-Agent"] = "hubmirror (hf_transfer)"
        fd, path = tempfile.mkstemp(prefix="hubmirror-", suffix=".part")
        os.close(fd)
        try:
            run_hf_transfer({"url": url, "filename": path, "headers": headers, "chunk_size": 10 * 1024**2,
                             "max_files": max(4, self.settings.transfer.concurrency * 2), "parallel_failures": 3,
                             "max_retries": self.settings.transfer.max_retries})
            got = os.path.getsize(path)
            if got != meta.size:
                raise UpstreamError(f"wrote {got} of {meta.size} bytes")
        except Exception as exc:  # noqa: BLE001 - any failure falls back to the resumable stream engine
            # hf_transfer removes its file on some failures: the fallback must not trip over a missing .part.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            log.warning("%s@%s/%s: hf_transfer failed (%s: %s); fetching with the stream engine instead",
                        repo, sha[:12], meta.path, type(exc).__name__, exc)
            return None
        counter(meta.size)
        return path

    def _fetch_whole(self, repo: RepoRef, sha: str, meta: FileMeta, sha256: str | None, lfs: bool,
                     counter: _Counter, overwrite: bool) -> str:
        """Small bodies (or bodies whose sha256 is unknown): hash everything (in memory up to a part, on disk
        beyond), then put if new."""
        what = f"{repo}@{sha[:12]}/{meta.path}"
        hasher = BodyHasher(meta.size, git=not lfs)
        chunks = self.client.iter_body(repo, sha, meta.path, meta.size, on_bytes=counter)
        with tempfile.SpooledTemporaryFile(max_size=self.part_size, prefix="hubmirror-") as spool:
            for chunk in chunks:
                hasher.update(chunk)
                spool.write(chunk)
            got = hasher.verify(what, sha256=sha256, git_oid=None if lfs else meta.oid)
            key = blob_key(got)
            if overwrite or self.store.stat(key) is None:
                spool.seek(0)
                self.store.put_stream(key, cast(BinaryIO, spool), meta.size, part_size=self.part_size)
            return got


_HF_TRANSFER_CHILD = "import json, sys, hf_transfer; hf_transfer.download(**json.load(sys.stdin))"


def run_hf_transfer(arguments: dict[str, Any]) -> None:
    """`hf_transfer.download(**arguments)` in a child process, because it holds the GIL for the whole
    download: in this process it would freeze every other transfer (and progress) until it is done.
    The arguments go through stdin, so a token in the headers never shows in the process list."""
    proc = subprocess.run([sys.executable, "-c", _HF_TRANSFER_CHILD], input=json.dumps(arguments), text=True,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise UpstreamError(f"hf_transfer exited with {proc.returncode}: {last[:300]}")


class _Counter:
    """Counts received bytes (for reports) and forwards them to a progress callback."""

    def __init__(self, forward: Callable[[int], None] | None) -> None:
        self.total = 0
        self.forward = forward
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.total += n
        if self.forward is not None:
            self.forward(n)


def fetch_body(settings: Settings, store: Store, upstream: Upstream, repo: RepoRef, sha: str, file_meta: FileMeta,
               *, overwrite: bool = False) -> int:
    """Download, verify and store one body under `blob_key(sha256)`; returns the bytes fetched.

    `file_meta` is an upstream tree entry or a manifest FileEntry (sha256 known: verified against it,
    plus git blob sha1 for regular files). A body already present is not fetched again unless
    `overwrite` (repair of a corrupt blob). Raises IntegrityError if the upstream's bytes do not
    match, UpstreamError subclasses if the upstream fails, StorageError if S3 does.
    """
    transfer = Transfer(settings, store, upstream)
    try:
        return transfer.fetch(repo, sha, file_meta, overwrite=overwrite).bytes_fetched
    finally:
        transfer.close()
