"""First-sync throughput of one large LFS file, as a ratio to plain download and plain upload, in one run.

Everything runs on 127.0.0.1: the fake hub (hubmirror/demohub) serves a large LFS body through its CDN
origin, a throwaway SeaweedFS is the bucket. Measured in the same run, on the same machine:

- baseline "download": `hf_transfer.download` of the same file to local disk;
- baseline "upload": a plain multipart upload of the same bytes to the same S3 with the minio SDK;
- the sync: `sync_repo` of the repo into a fresh bucket (download + verify + upload), once per
  engine, each in a child process that reports its own peak RSS (VmHWM).

The ratio is sync throughput / the slower baseline (goal >= 0.9: the sync overlaps download,
hashing and upload instead of doing them one after another); the RSS goal is <= 300 MB. Each line
also gives the hub requests per GiB synced (issue 15: one `/resolve` per file, not one per part) and
the CPU seconds spent per GiB by the sync process, the fake hub and SeaweedFS: on a small machine
all three share the cores, which bounds what any sync can reach. `--profile` samples the stream
sync with py-spy and prints where its CPU time goes (download, sha256, S3 upload, other).

    .venv/bin/python bench/sync_throughput.py [--size-mib 1024] [--engines stream,hf_transfer] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hf_transfer  # noqa: E402

from hubmirror.demohub.corpus import LARGE_MODEL  # noqa: E402
from hubmirror.demohub.server import start_fakehub  # noqa: E402
from hubmirror.embedded_s3 import start_embedded_s3  # noqa: E402
from mirror_core.bodies import BodyClient  # noqa: E402
from mirror_core.layout import RepoRef  # noqa: E402
from mirror_core.settings import load_settings  # noqa: E402
from mirror_core.store import Store  # noqa: E402
from mirror_core.upstream import Upstream  # noqa: E402

MIB = 1024 * 1024
LARGE_FILE = "pytorch_model.bin"
PART = 16 * MIB

CHILD = """
import json, resource, sys, time
from mirror_core.layout import RepoRef
from mirror_core.settings import load_settings
from mirror_core.sync import sync_repo
settings = load_settings(**json.loads(sys.argv[1]))
started = time.perf_counter()
result = sync_repo(settings, RepoRef.parse(sys.argv[2]), write_report=False)
seconds = time.perf_counter() - started
usage, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
hwm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "ok": result.ok, "error": result.error,
                  "cpu": usage.ru_utime + usage.ru_stime + kids.ru_utime + kids.ru_stime,
                  "bytes_fetched": result.bytes_fetched, "peak_rss": hwm}))
"""
# Where the stream engine's CPU goes, by the innermost frame that names a stage (py-spy raw stacks).
STAGES = (("S3 upload (presigned part PUT, urllib3 send)", ("upload_part",)),
          ("sha256", ("hashing.py",)),
          ("download (urllib3 recv, copy into part buffers)", ("iter_body", "_ChunkReader", "fetch (")))


def run_child(overrides: dict, repo_id: str, profile: Path | None = None) -> dict:
    """Run one sync in a child process; its JSON result, with its peak RSS in bytes as `peak_rss`.

    The peak is the child's own VmHWM: wait4's ru_maxrss would also count the parent's memory,
    which Linux carries over into a child's high-water mark across fork+exec. With `profile`, the
    child runs under `py-spy record` (raw stacks written there).
    """
    command = [sys.executable, "-c", CHILD, json.dumps(overrides), repo_id]
    if profile is not None:
        spy = Path(sys.executable).with_name("py-spy")
        command = [str(spy), "record", "--nonblocking", "-r", "200", "-f", "raw", "-o", str(profile), "--", *command]
    proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL if profile else None,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"sync child failed with exit code {proc.returncode}: {proc.stdout}")
    return json.loads(next(line for line in reversed(proc.stdout.splitlines()) if line.startswith("{")))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stages(raw: Path) -> list[tuple[str, float]]:
    """Share of on-CPU samples per stage, from py-spy's raw output (`frame;frame;... count` lines)."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        stage = next((name for frame in reversed(frames) for name, marks in STAGES
                      if any(mark in frame for mark in marks)), "other (threads, queues, S3/HTTP setup)")
        counts[stage] += int(n)
    total = sum(counts.values()) or 1
    return [(name, n / total) for name, n in counts.most_common()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--engines", default="stream,hf_transfer")
    parser.add_argument("--profile", action="store_true", help="sample the stream sync with py-spy")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "hubmirror-bench-fakehub"))
    args = parser.parse_args()
    size = args.size_mib * MIB

    s3 = start_embedded_s3()
    hub = start_fakehub(Path(args.data_dir), large_size=size)
    tmp = Path(tempfile.mkdtemp(prefix="hubmirror-bench-"))
    try:
        cdn = hub.cdn_url.split("://", 1)[1]
        base = {"upstream_url": hub.url, "s3_endpoint": s3.endpoint, "s3_access_key": s3.access_key,
                "s3_secret_key": s3.secret_key, "s3_region": "us-east-1",
                "transfer": {"allowed_redirect_hosts": [cdn], "part_size": PART}}
        settings = load_settings(s3_bucket="bench-probe", **base)
        upstream = Upstream(settings)
        repo = RepoRef.parse(LARGE_MODEL)
        sha = upstream.refs(repo)["branches"]["main"]
        url, headers = BodyClient(settings, upstream).final_url(repo, sha, LARGE_FILE)

        gib = size / 1024**3
        servers = {"hub": hub.pid, "s3": s3.pid}

        def snapshot() -> dict[str, float]:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return {"client": usage.ru_utime + usage.ru_stime, **{n: cpu_seconds(pid) for n, pid in servers.items()}}

        def cpu_per_gib(before: dict[str, float], child: float | None = None) -> dict[str, float]:
            """CPU seconds per GiB since `before`: the client (this process, or the sync child), hub, S3."""
            after = snapshot()
            used = {name: (after[name] - before[name]) / gib for name in after}
            if child is not None:
                used["client"] = child / gib
            return used

        def show(used: dict[str, float]) -> str:
            return "CPU s/GiB " + " ".join(f"{name} {seconds:.1f}" for name, seconds in used.items())

        local = tmp / "download.bin"
        before = snapshot()
        started = time.perf_counter()
        hf_transfer.download(url=url, filename=str(local), max_files=8, chunk_size=10 * MIB, headers=headers)
        download = size / (time.perf_counter() - started)
        assert local.stat().st_size == size, "baseline download is incomplete"
        download_cpu = cpu_per_gib(before)

        client = s3.client()
        client.make_bucket("bench-upload")
        with local.open("rb") as fh:
            before = snapshot()
            started = time.perf_counter()
            client.put_object("bench-upload", "body", fh, size, part_size=PART, num_parallel_uploads=4)
            upload = size / (time.perf_counter() - started)
            upload_cpu = cpu_per_gib(before)
        local.unlink()
        slower = min(download, upload)
        slower_cpu = sum((upload_cpu if upload <= download else download_cpu).values())
        print(f"file: {LARGE_MODEL}/{LARGE_FILE}, {size / MIB:.0f} MiB, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f} (other work on the machine skews every figure)")
        print(f"baseline hf_transfer.download to disk: {download / MIB:8.1f} MiB/s  {show(download_cpu)}")
        print(f"baseline minio multipart upload:       {upload / MIB:8.1f} MiB/s  {show(upload_cpu)}")

        for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
            bucket = f"bench-{engine.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
            Store(load_settings(s3_bucket=bucket, **base).s3).ensure_bucket()
            overrides = {**base, "s3_bucket": bucket,
                         "transfer": {**base["transfer"], "engine": engine, "hf_transfer_threshold": 0}}
            hub.reset()
            before = snapshot()
            result = run_child(overrides, LARGE_MODEL)
            if not result["ok"]:
                raise SystemExit(f"sync with engine {engine} failed: {result['error']}")
            counters = hub.counters()
            hub_requests = sum(counters[kind]["requests"] for kind in ("api", "resolve", "other"))
            rate = result["bytes_fetched"] / result["seconds"]
            print(f"sync engine={engine:<11}  {rate / MIB:8.1f} MiB/s  ratio to slower baseline: "
                  f"{rate / slower:.2f} (goal >= 0.9)  peak RSS: {result['peak_rss'] / 1e6:.0f} MB (goal <= 300 MB)")
            used = cpu_per_gib(before, result["cpu"])
            print(f"  hub requests per GiB: {hub_requests / gib:.1f} ({counters['resolve']['requests']} /resolve, "
                  f"{counters['api']['requests']} /api; CDN GETs: {counters['cdn']['requests']})  {show(used)}")
            print(f"  where the cores are the limit, the ratio cannot pass {slower_cpu / sum(used.values()):.2f} "
                  f"(CPU s/GiB of the slower baseline / of the sync, hub and S3 together)")

        if args.profile:
            bucket = f"bench-profile-{uuid.uuid4().hex[:6]}"
            Store(load_settings(s3_bucket=bucket, **base).s3).ensure_bucket()
            overrides = {**base, "s3_bucket": bucket, "transfer": {**base["transfer"], "engine": "stream"}}
            raw = tmp / "profile.txt"
            result = run_child(overrides, LARGE_MODEL, profile=raw)
            print(f"profile of the stream sync (py-spy, on-CPU samples; {result['cpu'] / gib:.1f} CPU s/GiB, "
                  f"{result['cpu'] / result['seconds']:.2f} cores busy on average):")
            for name, share in stages(raw):
                print(f"  {share:6.1%}  {name}")
            if os.environ.get("HUBMIRROR_BENCH_KEEP_PROFILE"):
                raw.rename(os.environ["HUBMIRROR_BENCH_KEEP_PROFILE"])
            else:
                raw.unlink()
    finally:
        hub.stop()
        s3.stop()
        for leftover in tmp.glob("*"):
            leftover.unlink()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
