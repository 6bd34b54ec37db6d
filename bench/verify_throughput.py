"""Verify throughput as a ratio to hashlib's sha256 over the same bytes in memory, in the same run.

`hubmirror verify` streams every body out of S3 and re-hashes it; the best it can do is the speed
of sha256 itself. This fills a throwaway SeaweedFS bucket (127.0.0.1) with bodies named by one
manifest, hashes the same bytes in memory with hashlib (the baseline), runs a full verify with
several thread-pool sizes, and prints each throughput and its ratio to the baseline.

    .venv/bin/python bench/verify_throughput.py [--bodies 32] [--size-mib 4] [--workers 1,4,8]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hubmirror.embedded_s3 import start_embedded_s3  # noqa: E402
from mirror_core.hashing import git_blob_sha1  # noqa: E402
from mirror_core.layout import RepoRef, blob_key, commit_key, refs_key  # noqa: E402
from mirror_core.manifest import CommitManifest, FileEntry, LfsInfo, Refs  # noqa: E402
from mirror_core.settings import load_settings  # noqa: E402
from mirror_core.store import Store  # noqa: E402
from mirror_core.verify import verify  # noqa: E402

MIB = 1024 * 1024


def fill(store: Store, bodies: list[bytes]) -> None:
    """Upload the bodies and publish one manifest (LFS entries: sha256 only, like the baseline)."""
    repo = RepoRef.parse("bench/verify")
    entries = []
    for i, data in enumerate(bodies):
        sha256 = hashlib.sha256(data).hexdigest()
        store.put_bytes(blob_key(sha256), data)
        entries.append(FileEntry(path=f"part-{i:04d}.bin", size=len(data), sha256=sha256,
                                 oid=git_blob_sha1(sha256.encode()), lfs=LfsInfo(pointer_size=134)))
    sha = hashlib.sha1(b"bench").hexdigest()
    manifest = CommitManifest(repo_type="models", repo_id=repo.repo_id, sha=sha, files=entries,
                              upstream="http://127.0.0.1:1")
    store.put_bytes(commit_key(repo, sha), manifest.to_json())
    store.put_bytes(refs_key(repo), Refs(upstream="http://127.0.0.1:1", branches={"main": sha}).to_json())


def baseline(bodies: list[bytes], rounds: int = 3) -> float:
    """Bytes per second of hashlib.sha256 over the same bodies, in memory (best of `rounds`)."""
    total = sum(len(b) for b in bodies)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for data in bodies:
            hashlib.sha256(data).hexdigest()
        best = min(best, time.perf_counter() - started)
    return total / best


def raw_read(store: Store, keys: list[str], workers: int) -> float:
    """Bytes per second of plain S3 GETs of the same bodies, no hashing: the ceiling verify can reach."""
    def one(key: str) -> int:
        response = store.open(key)
        try:
            return sum(len(chunk) for chunk in response.stream(MIB, decode_content=False))
        finally:
            response.close()
            response.release_conn()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        total = sum(pool.map(one, keys))
    return total / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=32)
    parser.add_argument("--size-mib", type=float, default=4.0)
    parser.add_argument("--workers", default="1,4,8", help="comma-separated thread-pool sizes to try")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    bodies = [os.urandom(int(args.size_mib * MIB)) for _ in range(args.bodies)]
    total = sum(len(b) for b in bodies)

    s3 = start_embedded_s3()
    try:
        settings = load_settings(s3_endpoint=s3.endpoint, s3_access_key=s3.access_key, s3_secret_key=s3.secret_key,
                                 s3_bucket=f"bench-{uuid.uuid4().hex[:12]}", s3_region="us-east-1")
        store = Store(settings.s3)
        store.ensure_bucket()
        fill(store, bodies)
        print(f"{args.bodies} bodies x {args.size_mib:g} MiB = {total / MIB:.0f} MiB on SeaweedFS at 127.0.0.1")
        keys = [blob_key(hashlib.sha256(b).hexdigest()) for b in bodies]
        print(f"{'workers':>8} {'sha256 MiB/s':>13} {'verify MiB/s':>13} {'ratio':>7} {'end-to-end MiB/s':>17} "
              f"{'ratio':>7} {'S3 GET only MiB/s':>18}")
        for n in workers:
            # The baseline is taken right before and after each run: on a shared machine the CPU
            # available to hashlib changes from minute to minute, and the ratio must compare like with like.
            before = baseline(bodies)
            started = time.perf_counter()
            report = verify(settings, store, workers=n, write_report=False)
            wall = time.perf_counter() - started
            base = (before + baseline(bodies)) / 2
            if not report.ok or report.bytes_checked != total:
                print(f"verify did not check every byte cleanly: {report.to_dict()}")
                return 1
            hashed = report.throughput
            raw = raw_read(store, keys, n)
            print(f"{n:>8} {base / MIB:>13.0f} {hashed / MIB:>13.0f} {hashed / base:>7.2f} "
                  f"{total / wall / MIB:>17.0f} {total / wall / base:>7.2f} {raw / MIB:>18.0f}")
        print("ratio = verify throughput / hashlib.sha256 over the same bytes in memory, single thread "
              "(1.00 = as fast as hashing alone); end-to-end also lists the bucket and reads the manifests; "
              "S3 GET only = the same reads without hashing (the S3 server shares this machine's CPUs)")
    finally:
        s3.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
