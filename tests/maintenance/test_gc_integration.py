"""retention + gc on a bucket filled by the real sync from the fake hub, checked with the real client.

After retention and gc every retained manifest still downloads byte-identically through `hubmirror serve`
and huggingface_hub's snapshot_download, compared with the fake hub's own tree (sizes, LFS sha256, git
blob ids); bodies only removed commits named are gone once past the grace period; and a gc that runs
while a sync is paused between uploading bodies and publishing its manifest loses nothing.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
from huggingface_hub import HfApi

from mirror_core.gc import collect_garbage, retain_and_collect
from mirror_core.inventory import list_blobs, list_repos
from mirror_core.layout import blob_key, refs_key
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from mirror_core.verify import verify
from tests.maintenance.conftest import PLAYGROUND, sha256, upstream_settings
from tests.serve.server import run_client, start_serve

CLIENT = """
import hashlib, json, os
from huggingface_hub import snapshot_download
out = {}
for sha in json.loads(os.environ["SHAS"]):
    root = snapshot_download(os.environ["REPO"], repo_type="dataset", revision=sha)
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            data = open(path, "rb").read()
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            git = hashlib.sha1(b"blob %d\\0" % len(data) + data).hexdigest()
            files[rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "git": git}
    out[sha] = files
print(json.dumps(out))
"""


def _upstream_tree(fakehub, sha: str) -> dict[str, dict]:
    """The fake hub's own answer for one commit: path -> size, git blob id, LFS sha256."""
    api = HfApi(endpoint=fakehub.url, token=fakehub.tokens["service"])
    return {f.path: {"size": f.size, "oid": f.blob_id, "lfs": f.lfs.sha256 if f.lfs else None}
            for f in api.list_repo_tree(PLAYGROUND.repo_id, repo_type="dataset", revision=sha, recursive=True)
            if hasattr(f, "blob_id")}


def test_after_retention_and_gc_every_retained_commit_downloads_byte_identically(
        s3_server, mirror_settings, fakehub, branch, tmp_path):
    w = [f"{branch.name} weights {i} ".encode() * 3000 for i in range(3)]
    c1 = branch.commit({"w.bin": w[0]}, lfs=True)
    c2 = branch.commit({"w.bin": w[1]}, lfs=True)
    c3 = branch.commit({"w.bin": w[2], "extra.txt": b"added in c3\n"})
    tag = f"{branch.name}-v1"
    fakehub.create_tag(PLAYGROUND.singular_type, PLAYGROUND.repo_id, tag, c1)
    settings = upstream_settings(s3_server, mirror_settings.s3_bucket, fakehub,
                                 retention={"keep_last": 1, "gc_grace_seconds": 2})
    result = sync_repo(settings, PLAYGROUND, ["main", c1, c2, branch.name])
    assert result.ok, result.error
    store = Store(settings.s3)
    refs = store.get_json(refs_key(PLAYGROUND))
    assert refs["branches"][branch.name] == c3 and refs["tags"][tag] == c1
    main = refs["branches"]["main"]

    early = retain_and_collect(settings, store)  # everything is younger than the 2 s grace
    assert early.ok and not early.retention["removed"] and early.deleted == 0
    time.sleep(2.5)
    report = retain_and_collect(settings, store)
    assert report.ok, report.to_dict()
    assert [k.rsplit("/", 1)[1] for k in report.retention["removed"]] == [f"{c2}.json"]
    assert [b["sha256"] for b in report.deleted_blobs] == [sha256(w[1])]
    blobs = list_blobs(store)[0]
    assert sha256(w[1]) not in blobs and {sha256(w[0]), sha256(w[2])} <= blobs.keys()
    retained = set(list_repos(store).repos[PLAYGROUND].manifests)
    assert retained == {main, c1, c3}
    assert verify(settings, store).ok

    serve = start_serve(settings)
    try:
        assert httpx.get(f"{serve.url}/api/datasets/{PLAYGROUND.repo_id}/revision/{c2}").status_code == 404
        got = run_client(CLIENT, serve.url, tmp_path, extra_env={"REPO": PLAYGROUND.repo_id,
                                                                  "SHAS": json.dumps(sorted(retained))})
    finally:
        serve.stop()
    for sha in retained:
        truth = _upstream_tree(fakehub, sha)
        files = got[sha]
        assert files.keys() == truth.keys(), sha
        for path, want in truth.items():
            assert files[path]["size"] == want["size"], path
            if want["lfs"]:
                assert files[path]["sha256"] == want["lfs"], path
            else:
                assert files[path]["git"] == want["oid"], path


class PausingStore(Store):
    """A Store that stops a sync right before it writes a commit manifest (after every body is up)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reached = threading.Event()
        self.release = threading.Event()

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        if key.startswith("repos/") and "/commits/" in key:
            self.reached.set()
            if not self.release.wait(60):
                raise TimeoutError("the test never released the paused sync")
        return super().put_bytes(key, data, content_type)


def test_gc_during_a_paused_sync_loses_nothing(mirror_settings, fakehub, branch):
    fresh = f"{branch.name} fresh body ".encode() * 2000
    branch.commit({"fresh.bin": fresh}, lfs=True)
    store = Store(mirror_settings.s3)
    paused = PausingStore(mirror_settings.s3)
    results = []
    worker = threading.Thread(target=lambda: results.append(
        sync_repo(mirror_settings, PLAYGROUND, [branch.name], store=paused)))
    worker.start()
    try:
        assert paused.reached.wait(60), "the sync never reached its manifest publish"
        assert store.exists(blob_key(sha256(fresh)))  # uploaded, named by no manifest yet
        danger = collect_garbage(mirror_settings, store, dry_run=True, grace_seconds=0)
        assert sha256(fresh) in {b["sha256"] for b in danger.deleted_blobs}  # only the grace protects it
        report = retain_and_collect(mirror_settings, store)  # the configured (default) grace
        assert report.ok and report.deleted == 0 and report.young >= 1
        assert store.exists(blob_key(sha256(fresh)))
    finally:
        paused.release.set()
        worker.join(60)
    [result] = results
    assert result.ok, result.error
    assert verify(mirror_settings, store).ok
    after = collect_garbage(mirror_settings, store, grace_seconds=0)  # the mark protects named bodies
    assert after.ok and sha256(fresh) not in {b["sha256"] for b in after.deleted_blobs}
    assert store.exists(blob_key(sha256(fresh)))
    check = verify(mirror_settings, store)
    assert check.ok and check.missing == [] and check.orphans == 0
