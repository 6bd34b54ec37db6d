"""First-sync throughput of one large LFS file, as a ratio to plain download and plain upload, in one run.

Everything runs on 127.0.0.1: the fake hub (hubmirror/demohub) serves a large LFS body through its CDN
origin, a throwaway SeaweedFS is the bucket. Measured in the same run, on the same machine:

- baseline "download": `hf_transfer.download` of the same file to local disk;
- baseline "upload": a plain multipart upload of the same bytes to the same S3 with the minio SDK;
- the sync: `sync_repo` of the repo into a fresh bucket (download + verify + upload), once per
  engine, each in a child process that reports its own peak RSS (VmHWM).

The ratio is sync throughput / the slower baseline (goal >= 0.8: the sync overlaps download,
hashing and upload instead of doing them one after another); the RSS goal is <= 300 MB.

    .venv/bin/python bench/sync_throughput.py [--size-mib 1024] [--engines stream,hf_transfer]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hf_transfer  # noqa: E402

from hubmirror.demohub.corpus import LARGE_MODEL  # noqa: E402
from hubmirror.demohub.server import start_fakehub  # noqa: E402
from hubmirror.embedded_s3 import start_embedded_s3  # noqa: E402
from mirror_core.layout import RepoRef  # noqa: E402
from mirror_core.settings import load_settings  # noqa: E402
from mirror_core.store import Store  # noqa: E402
from mirror_core.transfer import BodyClient  # noqa: E402
from mirror_core.upstream import Upstream  # noqa: E402

MIB = 1024 * 1024
LARGE_FILE = "pytorch_model.bin"
PART = 16 * MIB

CHILD = """
import json, sys, time
from mirror_core.layout import RepoRef
from mirror_core.settings import load_settings
from mirror_core.sync import sync_repo
settings = load_settings(**json.loads(sys.argv[1]))
started = time.perf_counter()
result = sync_repo(settings, RepoRef.parse(sys.argv[2]), write_report=False)
hwm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": time.perf_counter() - started, "ok": result.ok, "error": result.error,
                  "bytes_fetched": result.bytes_fetched, "peak_rss": hwm}))
"""


def run_child(overrides: dict, repo_id: str) -> dict:
    """Run one sync in a child process; its JSON result, with its peak RSS in bytes as `peak_rss`.

    The peak is the child's own VmHWM: wait4's ru_maxrss would also count the parent's memory,
    which Linux carries over into a child's high-water mark across fork+exec.
    """
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(overrides), repo_id], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"sync child failed with exit code {proc.returncode}: {proc.stdout}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--engines", default="stream,hf_transfer")
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

        local = tmp / "download.bin"
        started = time.perf_counter()
        hf_transfer.download(url=url, filename=str(local), max_files=8, chunk_size=10 * MIB, headers=headers)
        download = size / (time.perf_counter() - started)
        assert local.stat().st_size == size, "baseline download is incomplete"

        client = s3.client()
        client.make_bucket("bench-upload")
        with local.open("rb") as fh:
            started = time.perf_counter()
            client.put_object("bench-upload", "body", fh, size, part_size=PART, num_parallel_uploads=4)
            upload = size / (time.perf_counter() - started)
        local.unlink()
        slower = min(download, upload)
        print(f"file: {LARGE_MODEL}/{LARGE_FILE}, {size / MIB:.0f} MiB")
        print(f"baseline hf_transfer.download to disk: {download / MIB:8.1f} MiB/s")
        print(f"baseline minio multipart upload:       {upload / MIB:8.1f} MiB/s")

        for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
            bucket = f"bench-{engine.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
            Store(load_settings(s3_bucket=bucket, **base).s3).ensure_bucket()
            overrides = {**base, "s3_bucket": bucket,
                         "transfer": {**base["transfer"], "engine": engine, "hf_transfer_threshold": 0}}
            result = run_child(overrides, LARGE_MODEL)
            if not result["ok"]:
                raise SystemExit(f"sync with engine {engine} failed: {result['error']}")
            rate = result["bytes_fetched"] / result["seconds"]
            print(f"sync engine={engine:<11}  {rate / MIB:8.1f} MiB/s  ratio to slower baseline: "
                  f"{rate / slower:.2f} (goal >= 0.8)  peak RSS: {result['peak_rss'] / 1e6:.0f} MB (goal <= 300 MB)")
    finally:
        hub.stop()
        s3.stop()
        for leftover in tmp.glob("*"):
            leftover.unlink()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
