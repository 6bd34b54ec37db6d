"""Benchmark of the read service against baselines measured in the same run, on this machine.

Prints:
  1. GET throughput of a 1 GiB body through `hubmirror serve --mode proxy`, as a ratio to a direct
     S3 GET of the same object with the same client (httpx, streamed)             goal >= 0.8
  2. redirect mode's added latency per request (302 + presigned GET vs a direct S3 GET of a range)
  3. HEAD /resolve requests per second on a small file, 32 concurrent keep-alive clients, as a ratio
     to a do-nothing Starlette handler under uvicorn with the same worker count    goal >= 0.5
  4. p50/p99 latency of model_info and of a 1000-entry tree page under the same load.

Not a test: run `python bench/serve_throughput.py [--size-mib 1024] [--workers 1] [--seconds 5]`.
Everything binds 127.0.0.1; every server started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hubmirror.embedded_s3 import free_port, start_embedded_s3  # noqa: E402
from mirror_core.layout import RepoRef, blob_key, commit_key, refs_key  # noqa: E402
from mirror_core.manifest import CommitManifest, FileEntry, LfsInfo, Refs  # noqa: E402
from mirror_core.settings import load_settings  # noqa: E402
from mirror_core.store import Store  # noqa: E402

MIB = 1024 * 1024


class _Body:
    """`size` bytes made of 1 MiB random blocks, each stamped with its index (so no two are equal)."""

    def __init__(self, size: int, seed: bytes) -> None:
        self.size, self.seed, self.pos = size, seed, 0

    def block(self, i: int) -> bytes:
        return i.to_bytes(8, "big") + self.seed[8:]

    def sha256(self) -> str:
        h = hashlib.sha256()
        for i in range(0, self.size, MIB):
            h.update(self.block(i // MIB)[: min(MIB, self.size - i)])
        return h.hexdigest()

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            offset = (self.pos + len(out)) % MIB
            index = (self.pos + len(out)) // MIB
            out += self.block(index)[offset: offset + n - len(out)]
        self.pos += n
        return bytes(out)


def _publish(store: Store, repo: RepoRef, files: list[FileEntry]) -> str:
    sha = hashlib.sha1(f"bench:{repo}:{len(files)}".encode()).hexdigest()
    manifest = CommitManifest(repo_type=repo.type, repo_id=repo.repo_id, sha=sha, upstream="bench",
                              info={"id": repo.repo_id, "lastModified": "2024-01-01T00:00:00.000Z", "tags": []},
                              files=files)
    store.put_bytes(commit_key(repo, sha), manifest.to_json())
    store.put_bytes(refs_key(repo), Refs(upstream="bench", private=False, gated=False)
                    .with_ref("branches", "main", sha).to_json())
    return sha


def _small_entry(path: str, data: bytes) -> FileEntry:
    return FileEntry(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     oid=hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())


def prepare_bucket(store: Store, size: int) -> str:
    """A 1 GiB LFS body, a small model and a 2,500-file repo; returns the big blob's key."""
    body = _Body(size, os.urandom(MIB))
    sha256 = body.sha256()
    store.put_stream(blob_key(sha256), body, size)  # type: ignore[arg-type]
    _publish(store, RepoRef.parse("bench/big"), [FileEntry(path="big.bin", size=size, sha256=sha256,
                                                           oid="0" * 40, lfs=LfsInfo(pointer_size=134))])
    config = b'{"model_type": "bert", "hidden_size": 32}\n'
    store.put_bytes(blob_key(hashlib.sha256(config).hexdigest()), config)
    _publish(store, RepoRef.parse("bench/small"), [_small_entry("config.json", config)])
    many = [_small_entry(f"data/{i // 100:03d}/file_{i:05d}.txt", f"{i}\n".encode()) for i in range(2500)]
    _publish(store, RepoRef.parse("bench/many"), many)
    return blob_key(sha256)


# -- servers -------------------------------------------------------------------------------------

def _start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    log = open(tempfile.mkstemp(prefix="bench-serve-", suffix=".log")[1], "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    proc.log_path = Path(log.name)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited early; see {log.name}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    output = Path(log.name).read_text(errors="replace")[-2000:]
    _stop(proc)
    raise RuntimeError(f"{' '.join(cmd)} did not start:\n{output}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    Path(proc.log_path).unlink(missing_ok=True)  # type: ignore[attr-defined]


def start_serve(s3_env: dict[str, str], mode: str, workers: int,
                extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, **s3_env, "HUBMIRROR_SERVE_ACCESS_LOG": "0", **(extra or {})}
    cmd = [str(Path(sys.executable).parent / "hubmirror"), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--mode", mode, "--workers", str(workers), "--log-level", "warning"]
    return _start(cmd, env, port), f"http://127.0.0.1:{port}"


def start_empty(workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.serve_empty_app:create_app", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    return _start(cmd, dict(os.environ), port), f"http://127.0.0.1:{port}"


# -- measurements ----------------------------------------------------------------------------------

def stream_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, float]:
    """Bytes and seconds of one streamed GET with httpx (1 MiB reads, nothing kept)."""
    started = time.perf_counter()
    n = 0
    with httpx.stream("GET", url, headers=headers, timeout=120) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(MIB):
            n += len(chunk)
    return n, time.perf_counter() - started


def throughput(url: str, rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        n, seconds = stream_get(url)
        best = max(best, n / seconds)
    return best


def mean_latency(fn, n: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


async def _load(url: str, path: str, method: str, clients: int, seconds: float) -> list[float]:
    """`clients` keep-alive connections sending back-to-back requests; per-request latencies."""
    host, port = url.removeprefix("http://").split(":")
    request = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: bench\r\n\r\n".encode()
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                if status >= 400:
                    raise RuntimeError(f"{method} {path} answered {status}: {head[:300]!r}")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if method != "HEAD" and length:
                    await reader.readexactly(length)
                latencies.append(time.perf_counter() - t)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def load(url: str, path: str, method: str = "HEAD", clients: int = 32, seconds: float = 5) -> list[float]:
    try:
        import uvloop

        return uvloop.run(_load(url, path, method, clients, seconds))
    except ImportError:
        return asyncio.run(_load(url, path, method, clients, seconds))


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    s3 = start_embedded_s3()
    procs: list[subprocess.Popen] = []
    try:
        settings = load_settings(s3_endpoint=s3.endpoint, s3_access_key=s3.access_key, s3_secret_key=s3.secret_key,
                                 s3_bucket=f"bench-{uuid.uuid4().hex[:8]}", s3_region="us-east-1")
        store = Store(settings.s3)
        store.ensure_bucket()
        print(f"preparing a {args.size_mib} MiB body and two repos in {s3.endpoint} ...", flush=True)
        big_key = prepare_bucket(store, args.size_mib * MIB)
        s3_env = {**s3.env(), "HUBMIRROR_S3_BUCKET": settings.s3_bucket, "HUBMIRROR_S3_REGION": "us-east-1"}
        direct_url = store.presigned_get(big_key)

        proxy, proxy_url = start_serve(s3_env, "proxy", args.workers)
        procs.append(proxy)
        unhashed, unhashed_url = start_serve(s3_env, "proxy", args.workers, {"HUBMIRROR_SERVE_VERIFY_FULL_GETS": "0"})
        procs.append(unhashed)
        serve_big = f"{proxy_url}/bench/big/resolve/main/big.bin"
        unhashed_big = f"{unhashed_url}/bench/big/resolve/main/big.bin"
        for url in (serve_big, unhashed_big):
            stream_get(url, {"Range": "bytes=0-0"})  # warm caches
        direct_bps = serve_bps = unhashed_bps = 0.0
        for _ in range(args.rounds):  # interleaved, so drift in the machine's load hits all three
            direct_bps = max(direct_bps, throughput(direct_url, 1))
            serve_bps = max(serve_bps, throughput(serve_big, 1))
            unhashed_bps = max(unhashed_bps, throughput(unhashed_big, 1))
        print(f"\n1. 1 GiB-class GET ({args.size_mib} MiB), best of {args.rounds}:")
        print(f"   direct S3 GET                  {direct_bps / MIB:8.1f} MiB/s")
        print(f"   serve proxy GET (sha256 check)  {serve_bps / MIB:8.1f} MiB/s   ratio {serve_bps / direct_bps:.2f}"
              " (goal >= 0.8)")
        print(f"   serve proxy GET (VERIFY_FULL_GETS=0) {unhashed_bps / MIB:8.1f} MiB/s   ratio "
              f"{unhashed_bps / direct_bps:.2f}")
        _stop(unhashed)

        redirect, redirect_url = start_serve(s3_env, "redirect", args.workers)
        procs.append(redirect)
        small_range = {"Range": "bytes=0-1023"}
        with httpx.Client(follow_redirects=True, timeout=30) as c:
            direct = mean_latency(lambda: c.get(direct_url, headers=small_range).raise_for_status(), 200)
            via = mean_latency(
                lambda: c.get(f"{redirect_url}/bench/big/resolve/main/big.bin", headers=small_range).raise_for_status(),
                200)
        print("\n2. redirect mode, 1 KiB range of the big body, median of 200 sequential requests:")
        print(f"   direct S3 {direct * 1000:.2f} ms, via 302 {via * 1000:.2f} ms: added {(via - direct) * 1000:.2f} ms")

        empty, empty_url = start_empty(args.workers)
        procs.append(empty)
        load(empty_url, "/warmup", seconds=1)
        load(proxy_url, "/bench/small/resolve/main/config.json", seconds=1)
        base = load(empty_url, "/bench/small/resolve/main/config.json", seconds=args.seconds)
        heads = load(proxy_url, "/bench/small/resolve/main/config.json", seconds=args.seconds)
        base_rps, head_rps = len(base) / args.seconds, len(heads) / args.seconds
        print(f"\n3. HEAD resolve, 32 keep-alive clients, {args.workers} worker(s), {args.seconds:.0f} s each:")
        print(f"   empty Starlette   {base_rps:8.0f} req/s")
        print(f"   serve HEAD        {head_rps:8.0f} req/s   ratio {head_rps / base_rps:.2f} (goal >= 0.5)"
              f"   p50 {pct(heads, .5):.2f} ms p99 {pct(heads, .99):.2f} ms")

        info = load(proxy_url, "/api/models/bench/small", "GET", seconds=args.seconds)
        tree = load(proxy_url, "/api/models/bench/many/tree/main?recursive=true", "GET", seconds=args.seconds)
        print("\n4. same load (32 clients):")
        print(f"   model_info        {len(info) / args.seconds:8.0f} req/s   p50 {pct(info, .5):.2f} ms"
              f"   p99 {pct(info, .99):.2f} ms")
        print(f"   tree page (1000)  {len(tree) / args.seconds:8.0f} req/s   p50 {pct(tree, .5):.2f} ms"
              f"   p99 {pct(tree, .99):.2f} ms")
    finally:
        for proc in procs:
            _stop(proc)
        s3.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
