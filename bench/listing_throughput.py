"""Benchmark of listing from the catalog: 10,000 catalogued repos, latency under load beside model_info's.

Prints p50/p99 and requests/s, with 32 keep-alive clients against one `hubmirror serve` worker, of
  * model_info of one repo (the baseline: answered from cached manifests, no catalog),
  * list_models(search=..., sort=downloads, limit=50)   (substring search over the ids, then sorted),
  * list_models(sort=trending_score, limit=50)           (first page of the most common listing),
  * list_models(filter=<tag>, sort=likes, limit=50)      (tag filter through the tag index).
Repeated questions are answered from serve's page cache (a catalog file never changes); the in-process cost
of answering a question the first time is printed beside. The catalog is written by mirror_core.catalog from
10,000 synthetic manifests + popularity snapshots (the rows come from the same code a real build runs), then
published like a real build; model_info's repo is published
in the bucket. Not a test: run `python bench/listing_throughput.py [--repos 10000] [--seconds 5]`.
Everything binds 127.0.0.1; every server started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve_throughput import _publish, _small_entry, _stop, load, pct, start_serve  # noqa: E402
from hubmirror.embedded_s3 import start_embedded_s3  # noqa: E402
from mirror_core.catalog import CATALOG_FORMAT, Catalog, _row, write_catalog  # noqa: E402
from mirror_core.layout import CATALOG_LATEST, RepoRef, blob_key, catalog_key  # noqa: E402
from mirror_core.manifest import CommitManifest, Refs, hf_date  # noqa: E402
from mirror_core.popularity import RepoMeta  # noqa: E402
from mirror_core.settings import load_settings  # noqa: E402
from mirror_core.store import Store  # noqa: E402

WORDS = ("bert", "llama", "vision", "tiny", "whisper", "clip", "t5", "gpt", "mistral", "qwen", "phi", "gemma")
TAGS = ("transformers", "text-generation", "fill-mask", "image-classification", "en", "fr", "license:mit",
        "license:apache-2.0", "safetensors", "pytorch")


def synthetic_rows(n: int, seed: int = 7) -> list[tuple[dict, str]]:
    """(catalog row, README) of n repos, built by the catalog's own _row from manifests and snapshots."""
    rnd = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        repo = RepoRef.parse(f"org-{i % 300:03d}/{rnd.choice(WORDS)}-{rnd.choice(WORDS)}-{i:05d}")
        sha = hashlib.sha1(f"{repo}".encode()).hexdigest()
        files = [_small_entry(f"file-{k}.json", f"{i}-{k}".encode()) for k in range(rnd.randint(1, 8))]
        tags = rnd.sample(TAGS, 4)
        manifest = CommitManifest(repo_type="models", repo_id=repo.repo_id, sha=sha, upstream="bench", files=files,
                                  info={"id": repo.repo_id, "tags": tags, "private": False, "gated": False})
        when = start + timedelta(minutes=rnd.randint(0, 10**6))
        meta = RepoMeta(repo_type="models", repo_id=repo.repo_id, upstream="bench", source="trending", fields={
            "downloads": rnd.randint(0, 10**7), "likes": rnd.randint(0, 10**4), "trendingScore": rnd.randint(0, 500),
            "createdAt": hf_date(when), "lastModified": hf_date(when + timedelta(days=30)), "tags": tags,
            "pipeline_tag": "text-generation", "library_name": "transformers", "gated": False, "private": False,
            "cardData": {"license": "mit"}})
        refs = Refs(upstream="bench", private=False, gated=False).with_ref("branches", "main", sha)
        out.append((_row(manifest, refs, "main", meta), f"# {repo.name}\nA model about {rnd.choice(WORDS)}.\n"))
    return out


QUERIES = {  # the listing cases: query string, and the same question as Catalog.hub_listing arguments
    "list search+sort": ("search=llama-bert&sort=downloads&limit=50", {"search": ["llama-bert"], "sort": "downloads"}),
    "list sort only": ("sort=trendingScore&limit=50", {"sort": "trendingScore"}),
    "list tag+sort": ("filter=text-generation&sort=likes&limit=50", {"tags": ["text-generation"], "sort": "likes"}),
}


def publish_catalog(store: Store, rows: list[tuple[dict, str]]) -> dict[str, float]:
    """Write and publish the catalog; returns each listing query's uncached cost in-process (ms, median of 50)."""
    built = datetime.now(UTC)
    key = catalog_key(built)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite"
        count = write_catalog(path, rows, built)
        size = path.stat().st_size
        with Catalog(path) as catalog:
            cost = {}
            for name, (_, kwargs) in QUERIES.items():
                samples = []
                for _ in range(50):
                    t = time.perf_counter()
                    catalog.hub_listing("models", limit=51, visible=[], **kwargs)
                    samples.append((time.perf_counter() - t) * 1000)
                cost[name] = statistics.median(samples)
        with path.open("rb") as fh:
            store.put_stream(key, fh, size, "application/vnd.sqlite3")
    store.put_json(CATALOG_LATEST, {"format": CATALOG_FORMAT, "key": key, "built_at": hf_date(built),
                                    "repos": count, "size": size, "problems": []})
    return cost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()

    s3 = start_embedded_s3()
    procs = []
    try:
        settings = load_settings(s3_endpoint=s3.endpoint, s3_access_key=s3.access_key, s3_secret_key=s3.secret_key,
                                 s3_bucket=f"bench-{uuid.uuid4().hex[:8]}", s3_region="us-east-1")
        store = Store(settings.s3)
        store.ensure_bucket()
        print(f"cataloguing {args.repos} synthetic repos ...", flush=True)
        cost = publish_catalog(store, synthetic_rows(args.repos))
        config = b'{"model_type": "bert"}\n'
        store.put_bytes(blob_key(hashlib.sha256(config).hexdigest()), config)
        _publish(store, RepoRef.parse("bench/small"), [_small_entry("config.json", config)])
        s3_env = {**s3.env(), "HUBMIRROR_S3_BUCKET": settings.s3_bucket, "HUBMIRROR_S3_REGION": "us-east-1"}
        proc, url = start_serve(s3_env, "proxy", 1)
        procs.append(proc)
        cases = [("model_info", "/api/models/bench/small"),
                 *((name, f"/api/models?{query}") for name, (query, _) in QUERIES.items())]
        for _, path in cases:
            load(url, path, "GET", clients=4, seconds=1)  # warm: catalog downloaded, manifests cached
        print(f"\n{args.repos} catalogued repos, {args.clients} keep-alive clients, 1 worker, "
              f"{args.seconds:.0f} s each:")
        base_p99 = None
        for name, path in cases:
            samples = load(url, path, "GET", clients=args.clients, seconds=args.seconds)
            p99 = pct(samples, .99)
            base_p99 = base_p99 or p99
            first = f"   uncached query {cost[name]:5.2f} ms" if name in cost else ""
            print(f"   {name:18} {len(samples) / args.seconds:8.0f} req/s   p50 {pct(samples, .5):7.2f} ms"
                  f"   p99 {p99:7.2f} ms   p99 / model_info's {p99 / base_p99:5.2f}{first}")
    finally:
        for proc in procs:
            _stop(proc)
        s3.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
