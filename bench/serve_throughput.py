"""Benchmark of the read service against baselines measured in the same run, on this machine.

Prints (everything interleaved in rounds, so drift in the machine's load hits every variant alike):
  1. GET of a 1 GiB body through `hubmirror serve --mode proxy` as a ratio to a presigned direct S3 GET
     of the same object with the same client: curl (the cheapest client, the harshest ratio) and httpx
     streaming (what huggingface_hub uses), for each HUBMIRROR_SERVE_VERIFY_FULL_GETS mode: `fast` (the
     default: sha256 on a body's first full GET in a worker, then its xxh3 fingerprint), `sha256` (every
     GET hashed) and `off`                                                           goal >= 0.8
     and through `--mode redirect` (the 302 followed to the presigned URL: what clients get where they
     can reach S3);
     and where the time goes: CPU seconds per GiB of the S3 server, serve (event loop thread vs
     sha256 threads) and the client; a check's share is its mode minus `off`.
  2. redirect mode's added latency per request (302 + presigned GET vs a direct S3 GET of a range)
  3. HEAD /resolve req/s, 32 keep-alive clients: serve with 1 and 2 workers (goal: 2 >= 1), each
     against a do-nothing Starlette app under uvicorn with the same worker count, the CPU each
     worker used (an uneven split means the connections landed unevenly), and µs of CPU per request.
  4. the access log's cost: HEAD req/s with HUBMIRROR_SERVE_ACCESS_LOG on vs off (1 worker).
  5. p50/p99 latency of model_info and of a 1000-entry tree page under the same load.

Not a test: run `python bench/serve_throughput.py [--size-mib 1024] [--seconds 3] [--rounds 5]`.
Everything binds 127.0.0.1; every server started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
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


def start_serve(s3_env: dict[str, str], mode: str = "proxy", workers: int = 1,
                extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, **s3_env, "PYTHONPATH": str(ROOT), "HUBMIRROR_SERVE_ACCESS_LOG": "0", **(extra or {})}
    cmd = [str(Path(sys.executable).parent / "hubmirror"), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--mode", mode, "--workers", str(workers), "--log-level", "warning"]
    return _start(cmd, env, port), f"http://127.0.0.1:{port}"


def start_empty(workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.serve_empty_app:create_app", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    return _start(cmd, {**os.environ, "PYTHONPATH": str(ROOT)}, port), f"http://127.0.0.1:{port}"


# -- CPU accounting (Linux /proc) ----------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _ticks(stat: Path) -> float:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime, all threads for a process


def _family(pid: int) -> list[int]:
    """A process and all its descendants (uvicorn's workers are children of the launcher)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return out


def _workers(proc: subprocess.Popen) -> list[int]:
    """The processes that answer requests: uvicorn's spawned workers, or the launcher itself."""
    spawned = [p for p in _family(proc.pid) if p != proc.pid and "spawn_main" in _cmdline(p)]
    return spawned or [proc.pid]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


class Cpu:
    """CPU seconds used between start() and stop() by the S3 server and a serve process tree."""

    def __init__(self, s3_pid: int, proc: subprocess.Popen | None) -> None:
        self.s3_pid, self.proc = s3_pid, proc

    def _snapshot(self) -> dict[str, float]:
        snap = {"s3": _ticks(Path(f"/proc/{self.s3_pid}/stat"))}
        if self.proc is not None:
            snap["serve"] = sum(_ticks(Path(f"/proc/{p}/stat")) for p in _family(self.proc.pid))
            snap["loop"] = sum(_ticks(Path(f"/proc/{w}/task/{w}/stat")) for w in _workers(self.proc))
            for i, w in enumerate(_workers(self.proc)):
                snap[f"worker{i}"] = _ticks(Path(f"/proc/{w}/stat"))
        return snap

    def __enter__(self) -> dict[str, float]:
        self._before, self.used = self._snapshot(), {}
        return self.used

    def __exit__(self, *exc: object) -> None:
        after = self._snapshot()
        self.used.update({k: after[k] - self._before.get(k, 0.0) for k in after})


# -- measurements ----------------------------------------------------------------------------------

def stream_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, float, float]:
    """Bytes, seconds and client CPU seconds of one streamed GET with httpx (1 MiB reads, nothing kept)."""
    started, cpu = time.perf_counter(), time.process_time()
    n = 0
    with httpx.stream("GET", url, headers=headers, timeout=300, follow_redirects=True) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(MIB):
            n += len(chunk)
    return n, time.perf_counter() - started, time.process_time() - cpu


def curl_get(url: str) -> tuple[int, float, float]:
    """Bytes, seconds and client CPU seconds of one GET with curl into /dev/null."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["curl", "-sSfL", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
                         capture_output=True, text=True, timeout=300, check=True).stdout.split()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return int(out[0]), float(out[1]), cpu


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


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    """median [min-max]: the honest summary of a noisy, shared machine."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


# -- sections --------------------------------------------------------------------------------------

GOAL_VARIANT = "proxy, fast check"


def bench_get(s3_pid: int, direct_url: str, proxies: dict[str, tuple[subprocess.Popen, str]],
              redirect: tuple[subprocess.Popen, str], size: int, rounds: int) -> None:
    big = "/bench/big/resolve/main/big.bin"
    variants = {"direct S3 GET": (None, direct_url),
                **{f"proxy, {mode}": (proc, url + big) for mode, (proc, url) in proxies.items()},
                "redirect: 302, then S3": (redirect[0], redirect[1] + big)}
    clients = {"curl": curl_get, "httpx": stream_get} if shutil.which("curl") else {"httpx": stream_get}
    speed: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[dict[str, float]]] = {}
    first = {}
    stream_get(direct_url)  # S3's own caches warm, so the first proxied GET is not also S3's first read
    for mode, (_, url) in proxies.items():  # each worker's first full GET: hashed with sha256 in every mode but off
        n, seconds, _ = stream_get(url + big)
        first[mode] = n / seconds / MIB
    for _ in range(rounds):
        for client, get in clients.items():
            for name, (proc, url) in variants.items():
                with Cpu(s3_pid, proc) as used:
                    n, seconds, client_cpu = get(url)
                if n != size:
                    raise RuntimeError(f"{name} with {client} returned {n} bytes, expected {size}")
                speed.setdefault((client, name), []).append(n / seconds / MIB)
                cpu.setdefault((client, name), []).append({**used, "client": client_cpu})
    gib = size / 1024**3
    print(f"\n1. GET of a {size // MIB} MiB body, {rounds} interleaved rounds: MiB/s median [min-max];"
          " ratio = per-round proxy/direct, same client:")
    for client in clients:
        direct = speed[(client, "direct S3 GET")]
        for name in variants:
            ratios = [p / d for p, d in zip(speed[(client, name)], direct, strict=True)]
            tail = "" if name.startswith("direct") else f"   ratio {spread(ratios, '{:.2f}')}"
            goal = "  (goal >= 0.8)" if name == GOAL_VARIANT else ""
            print(f"   {client:5s} {name:22s} {spread(speed[(client, name)]):>20s} MiB/s{tail}{goal}")
    print("   first full GET of the body in a fresh worker (httpx): "
          + ", ".join(f"{mode} {rate:.0f} MiB/s" for mode, rate in first.items()))
    print(f"   where the time goes, CPU seconds per GiB (median; {os.cpu_count()} cores shared by all):")
    print("                                  S3 server   serve loop   serve threads   client   total")
    totals: dict[tuple[str, str], float] = {}
    for client in clients:
        for name in variants:
            rows = cpu[(client, name)]

            def med(key: str, rows: list[dict[str, float]] = rows) -> float:
                return statistics.median(r.get(key, 0.0) for r in rows) / gib

            serve, loop = med("serve"), med("loop")
            total = med("s3") + serve + med("client")
            others = statistics.median(r.get("serve", 0.0) - r.get("loop", 0.0) for r in rows) / gib
            threads = f"{others:10.2f}" if serve else "         -"
            totals[(client, name)] = total
            print(f"   {client:5s} {name:22s} {med('s3'):9.2f}   {loop:10.2f}   {threads}       "
                  f"{med('client'):6.2f}  {total:6.2f}")
    for client in clients:
        direct = totals[(client, "direct S3 GET")]
        bounds = ", ".join(f"{name.removeprefix('proxy, ')} {direct / totals[(client, name)]:.2f}"
                           for name in variants if not name.startswith("direct"))
        print(f"   {client:5s} ratio when CPU is the bottleneck (direct CPU / proxy CPU): {bounds}")
    print("   (serve loop = the event-loop thread: HTTP, reading S3's socket, xxh3, writing the client's socket;"
          " serve threads:\n    sha256 checks; a check's share is its row minus `off`. Proxying needs the S3"
          " server's and the client's\n    CPU plus serve's, so when all three share the cores the ratio is bounded"
          " by CPU, not by serve's design.)")


def bench_heads(s3_pid: int, servers: dict[str, tuple[subprocess.Popen, str]], seconds: float, rounds: int) -> None:
    path = "/bench/small/resolve/main/config.json"
    rps: dict[str, list[float]] = {name: [] for name in servers}
    us: dict[str, list[float]] = {name: [] for name in servers}
    split: list[str] = []
    latencies: dict[str, list[float]] = {name: [] for name in servers}
    for _, url in servers.values():
        load(url, path, seconds=1)  # warm up: connections, caches
    names = list(servers)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotated: no variant always goes first
            proc, url = servers[name]
            with Cpu(s3_pid, proc) as used:
                done = load(url, path, seconds=seconds)
            rps[name].append(len(done) / seconds)
            us[name].append(used["serve"] / len(done) * 1e6)
            latencies[name] += done
            if name == "serve, 2 workers":
                shares = sorted((used[k] for k in used if k.startswith("worker")), reverse=True)
                split.append("/".join(f"{s / seconds:.2f}" for s in shares))

    def ratio(a: str, b: str) -> str:
        return spread([x / y for x, y in zip(rps[a], rps[b], strict=True)], "{:.2f}")

    print(f"\n3. HEAD /resolve, 32 keep-alive clients, {seconds:.0f} s x {rounds} interleaved rounds:"
          " req/s median [min-max], CPU µs per request:")
    for name in servers:
        if name.startswith(("empty", "serve, 1", "serve, 2")):
            print(f"   {name:36s} {spread(rps[name]):>22s} req/s   {spread(us[name]):>14s} µs"
                  f"   p50 {pct(latencies[name], .5):.2f} ms p99 {pct(latencies[name], .99):.2f} ms")
    print(f"   serve 1 worker / empty app 1 worker  {ratio('serve, 1 worker', 'empty Starlette, 1 worker')}"
          "  (goal >= 0.5)")
    print(f"   serve 2 workers / 1 worker           {ratio('serve, 2 workers', 'serve, 1 worker')}"
          f"  (goal >= 1; empty app: {ratio('empty Starlette, 2 workers', 'empty Starlette, 1 worker')})")
    print(f"   cores used by each of the 2 workers  {', '.join(split)}  (uneven = connections landed unevenly)")

    def cpu_ratio(a: str, b: str) -> str:
        return spread([x / y for x, y in zip(us[a], us[b], strict=True)], "{:.2f}")

    print(f"   CPU per request, 2 workers / 1       serve {cpu_ratio('serve, 2 workers', 'serve, 1 worker')},"
          f" empty app {cpu_ratio('empty Starlette, 2 workers', 'empty Starlette, 1 worker')}"
          f"  (> 1 for both: 2 workers and the client contend for {os.cpu_count()} cores)")
    if "serve, 1 worker, multiprocess metrics" in servers:
        print(f"   1 worker with PROMETHEUS_MULTIPROC_DIR / without  "
              f"{ratio('serve, 1 worker, multiprocess metrics', 'serve, 1 worker')}")
    if "serve, 1 worker, access log on" in servers:
        on, off = rps["serve, 1 worker, access log on"], rps["serve, 1 worker"]
        cost = [1 - a / b for a, b in zip(on, off, strict=True)]
        added = [a - b for a, b in zip(us["serve, 1 worker, access log on"], us["serve, 1 worker"], strict=True)]
        print(f"\n4. access log (HUBMIRROR_SERVE_ACCESS_LOG=1, JSON lines to a file) vs off, 1 worker:"
              f" {spread(on)} vs {spread(off)} req/s,\n   cost {spread([c * 100 for c in cost])} % of"
              f" throughput, {spread(added, '{:.1f}')} µs CPU per request")


def bench_api(url: str, seconds: float) -> None:
    info = load(url, "/api/models/bench/small", "GET", seconds=seconds)
    tree = load(url, "/api/models/bench/many/tree/main?recursive=true", "GET", seconds=seconds)
    print("\n5. same load (32 clients, 1 worker):")
    print(f"   model_info        {len(info) / seconds:8.0f} req/s   p50 {pct(info, .5):.2f} ms"
          f"   p99 {pct(info, .99):.2f} ms")
    print(f"   tree page (1000)  {len(tree) / seconds:8.0f} req/s   p50 {pct(tree, .5):.2f} ms"
          f"   p99 {pct(tree, .99):.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    s3 = start_embedded_s3()
    procs: list[subprocess.Popen] = []

    def started(server: tuple[subprocess.Popen, str]) -> tuple[subprocess.Popen, str]:
        procs.append(server[0])
        return server

    try:
        settings = load_settings(s3_endpoint=s3.endpoint, s3_access_key=s3.access_key, s3_secret_key=s3.secret_key,
                                 s3_bucket=f"bench-{uuid.uuid4().hex[:8]}", s3_region="us-east-1")
        store = Store(settings.s3)
        store.ensure_bucket()
        print(f"preparing a {args.size_mib} MiB body and three repos in {s3.endpoint} ...", flush=True)
        big_key = prepare_bucket(store, args.size_mib * MIB)
        s3_env = {**s3.env(), "HUBMIRROR_S3_BUCKET": settings.s3_bucket, "HUBMIRROR_S3_REGION": "us-east-1"}
        direct_url = store.presigned_get(big_key, timedelta(hours=2))
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start"
              " (other work on the machine shows up as spread between rounds)")

        modes = {"fast check": "fast", "sha256 every GET": "sha256", "off": "off"}
        proxies = {name: started(start_serve(s3_env, extra={"HUBMIRROR_SERVE_VERIFY_FULL_GETS": mode}))
                   for name, mode in modes.items()}
        redirect_proc, redirect_url = started(start_serve(s3_env, "redirect"))
        bench_get(s3.pid, direct_url, proxies, (redirect_proc, redirect_url), args.size_mib * MIB, args.rounds)
        for proc, _ in proxies.values():
            _stop(proc)

        small_range = {"Range": "bytes=0-1023"}
        with httpx.Client(follow_redirects=True, timeout=30) as c:
            direct = mean_latency(lambda: c.get(direct_url, headers=small_range).raise_for_status(), 200)
            via = mean_latency(
                lambda: c.get(f"{redirect_url}/bench/big/resolve/main/big.bin", headers=small_range).raise_for_status(),
                200)
        _stop(redirect_proc)
        print("\n2. redirect mode, 1 KiB range of the big body, median of 200 sequential requests:")
        print(f"   direct S3 {direct * 1000:.2f} ms, via 302 {via * 1000:.2f} ms: added {(via - direct) * 1000:.2f} ms")

        metrics_dir = tempfile.mkdtemp(prefix="bench-metrics-")
        servers = {
            "empty Starlette, 1 worker": started(start_empty(1)),
            "empty Starlette, 2 workers": started(start_empty(2)),
            "serve, 1 worker": started(start_serve(s3_env)),  # fresh, like the others (not the one that streamed)
            "serve, 2 workers": started(start_serve(s3_env, workers=2)),
            "serve, 1 worker, access log on": started(start_serve(s3_env, extra={"HUBMIRROR_SERVE_ACCESS_LOG": "1"})),
            "serve, 1 worker, multiprocess metrics": started(start_serve(
                s3_env, extra={"PROMETHEUS_MULTIPROC_DIR": metrics_dir})),
        }
        bench_heads(s3.pid, servers, args.seconds, args.rounds)
        shutil.rmtree(metrics_dir, ignore_errors=True)
        bench_api(servers["serve, 1 worker"][1], args.seconds)
    finally:
        for proc in procs:
            _stop(proc)
        s3.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
