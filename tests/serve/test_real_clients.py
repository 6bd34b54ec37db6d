"""The real clients (huggingface_hub, `hf`, HfFileSystem) against `hubmirror serve` over a synced bucket,
in fresh HF_HOMEs, compared with what the upstream (the fake hub) says for the mirrored commits."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from huggingface_hub import HfApi, HfFileSystem, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder

from hubmirror.demohub import corpus
from tests.serve.conftest import GRANTED_TOKEN, MIRRORED, UNGRANTED_TOKEN, Synced
from tests.serve.server import ServeProcess, run_client

RESTRICTED = {corpus.GATED_MODEL, corpus.PRIVATE_MODEL}
LARGE_BIN = f"/{corpus.LARGE_MODEL}/resolve/main/pytorch_model.bin"

SNAPSHOT_ALL = r'''
import hashlib, json, os, sys
from huggingface_hub import snapshot_download
out = {}
for repo_id, repo_type, token in json.loads(sys.argv[1]):
    path = snapshot_download(repo_id, repo_type=repo_type[:-1], token=token or None)
    files = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            data = open(full, "rb").read()
            files[os.path.relpath(full, path)] = [len(data), hashlib.sha256(data).hexdigest(),
                                                  hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()]
    out[repo_type + ":" + repo_id] = files
print(json.dumps(out))
'''


def upstream_files(synced: Synced, repo_id: str, repo_type: str, revision: str = "main") -> dict[str, tuple]:
    """{path: (size, git oid, lfs sha256 or None)} from the upstream at the mirrored commit."""
    api = HfApi(endpoint=synced.hub.url, token=synced.hub.tokens["service"])
    sha = synced.sha(repo_id, repo_type, revision)
    return {e.path: (e.size, e.blob_id, e.lfs.sha256 if e.lfs else None)
            for e in api.list_repo_tree(repo_id, recursive=True, revision=sha, repo_type=repo_type[:-1])
            if isinstance(e, RepoFile)}


def assert_identical(got: dict[str, list], expected: dict[str, tuple], what: str) -> None:
    assert set(got) == set(expected), f"{what}: file sets differ: {set(got) ^ set(expected)}"
    for path, (size, oid, lfs_sha256) in expected.items():
        n, sha256, sha1 = got[path]
        assert n == size, f"{what}/{path}: {n} bytes, upstream says {size}"
        assert (sha256 == lfs_sha256) if lfs_sha256 else (sha1 == oid), f"{what}/{path}: bytes differ from upstream"


@pytest.mark.parametrize("mode", ["proxy", "redirect"])
def test_snapshot_download_every_repo(mode: str, synced: Synced, request: pytest.FixtureRequest,
                                      tmp_path: Path) -> None:
    serve: ServeProcess = request.getfixturevalue(f"serve_{mode}")
    repos = [(rid, rtype, GRANTED_TOKEN if rid in RESTRICTED else "") for rid, rtype, _ in MIRRORED]
    got = run_client(SNAPSHOT_ALL, serve.url, tmp_path / "hf", args=[json.dumps(repos)])
    for repo_id, repo_type, _ in repos:
        assert_identical(got[f"{repo_type}:{repo_id}"], upstream_files(synced, repo_id, repo_type), repo_id)
    if mode == "redirect":
        assert "Traceback" not in serve.log()


HF_HUB_DOWNLOAD = r'''
import hashlib, json, sys
from huggingface_hub import hf_hub_download
path = hf_hub_download(sys.argv[1], sys.argv[2])
data = open(path, "rb").read()
print(json.dumps({"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}))
'''


@pytest.mark.parametrize("mode", ["proxy", "redirect"])
def test_hf_hub_download_lfs(mode: str, synced: Synced, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    serve: ServeProcess = request.getfixturevalue(f"serve_{mode}")
    expected = upstream_files(synced, corpus.LARGE_MODEL, "models")["pytorch_model.bin"]
    got = run_client(HF_HUB_DOWNLOAD, serve.url, tmp_path / "hf", args=[corpus.LARGE_MODEL, "pytorch_model.bin"])
    assert (got["size"], got["sha256"]) == (expected[0], expected[2])


def test_hf_cli_download(synced: Synced, serve_redirect: ServeProcess, tmp_path: Path) -> None:
    hf = Path(sys.executable).parent / "hf"
    env = {"HF_ENDPOINT": serve_redirect.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_DISABLE_UPDATE_CHECK": "1", "PATH": str(Path(sys.executable).parent)}
    out = tmp_path / "out"
    subprocess.run([str(hf), "download", corpus.SMALL_MODEL, "--local-dir", str(out)], env=env, check=True,
                   capture_output=True, timeout=300)
    expected = upstream_files(synced, corpus.SMALL_MODEL, "models")
    got = {}
    for f in out.rglob("*"):
        if f.is_file() and ".cache" not in f.relative_to(out).parts:
            data = f.read_bytes()
            got[f.relative_to(out).as_posix()] = [len(data), hashlib.sha256(data).hexdigest(),
                                                  hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()]
    assert_identical(got, expected, "hf download")
    single = subprocess.run([str(hf), "download", corpus.SMALL_MODEL, "config.json"], env=env, check=True,
                            capture_output=True, text=True, timeout=120)
    path = Path(single.stdout.strip().splitlines()[-1].split("path:", 1)[-1].strip())
    assert git_oid(path.read_bytes()) == expected["config.json"][1]


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# -- metadata agrees with the upstream ---------------------------------------------------------------

def _tree(api: HfApi, repo_id: str, repo_type: str, sha: str, **kwargs) -> list[tuple]:
    out = []
    for e in api.list_repo_tree(repo_id, revision=sha, repo_type=repo_type[:-1], **kwargs):
        if isinstance(e, RepoFile):
            out.append(("file", e.path, e.size, e.blob_id, e.lfs.sha256 if e.lfs else None,
                        e.lfs.pointer_size if e.lfs else None))
        else:
            assert isinstance(e, RepoFolder)
            out.append(("dir", e.path, e.tree_id))
    return sorted(out)


def _siblings(info) -> list[tuple]:
    return sorted((s.rfilename, s.size, s.blob_id, s.lfs.sha256 if s.lfs else None) for s in info.siblings)


@pytest.mark.parametrize(("repo_id", "repo_type"), [(r, t) for r, t, _ in MIRRORED])
def test_metadata_agrees_with_upstream(repo_id: str, repo_type: str, synced: Synced,
                                       serve_proxy: ServeProcess) -> None:
    up = HfApi(endpoint=synced.hub.url, token=synced.hub.tokens["service"])
    mirror = HfApi(endpoint=serve_proxy.url, token=GRANTED_TOKEN)
    t = repo_type[:-1]
    for sha in synced.revisions[(repo_type, repo_id)].values():
        a = up.repo_info(repo_id, revision=sha, repo_type=t, files_metadata=True)
        b = mirror.repo_info(repo_id, revision=sha, repo_type=t, files_metadata=True)
        assert (b.id, b.sha, b.private, b.gated) == (a.id, a.sha, a.private, a.gated)
        assert _siblings(b) == _siblings(a)
        assert (b.tags, b.card_data) == (a.tags, a.card_data)
        if t == "model":
            assert (b.pipeline_tag, b.library_name, b.config) == (a.pipeline_tag, a.library_name, a.config)
        assert _tree(mirror, repo_id, repo_type, sha, recursive=True) == _tree(up, repo_id, repo_type, sha,
                                                                               recursive=True)
        assert _tree(mirror, repo_id, repo_type, sha) == _tree(up, repo_id, repo_type, sha)
        commits = [(c.commit_id, c.title, c.created_at, c.authors) for c in
                   up.list_repo_commits(repo_id, revision=sha, repo_type=t)]
        assert [(c.commit_id, c.title, c.created_at, c.authors) for c in
                mirror.list_repo_commits(repo_id, revision=sha, repo_type=t)] == commits
    head = synced.sha(repo_id, repo_type, next(iter(synced.revisions[(repo_type, repo_id)])))
    files = [p for p, *_ in _tree(up, repo_id, repo_type, head, recursive=True)]
    probe = [*files[:3], *[x[1] for x in _tree(up, repo_id, repo_type, head) if x[0] == "dir"][:2], "no/such/path"]

    def paths(api: HfApi) -> list[tuple]:
        return sorted((type(e).__name__, e.path, getattr(e, "size", None), getattr(e, "blob_id", None))
                      for e in api.get_paths_info(repo_id, probe, revision=head, repo_type=t))

    assert paths(mirror) == paths(up)


def test_refs_agree_with_upstream(synced: Synced, serve_proxy: ServeProcess) -> None:
    up = HfApi(endpoint=synced.hub.url, token=synced.hub.tokens["service"])
    mirror = HfApi(endpoint=serve_proxy.url)
    for repo_id, repo_type in ((corpus.BRANCHY_MODEL, "model"), (corpus.DATASET, "dataset")):
        a = up.list_repo_refs(repo_id, repo_type=repo_type, include_pull_requests=True)
        b = mirror.list_repo_refs(repo_id, repo_type=repo_type, include_pull_requests=True)
        assert sorted(b.branches, key=str) == sorted(a.branches, key=str)
        assert sorted(b.tags, key=str) == sorted(a.tags, key=str)
        assert sorted(b.converts, key=str) == sorted(a.converts, key=str)
        assert sorted(b.pull_requests or [], key=str) == sorted(a.pull_requests or [], key=str)


def test_revisions_resolve_like_upstream(synced: Synced, serve_proxy: ServeProcess, tmp_path: Path) -> None:
    mirror = HfApi(endpoint=serve_proxy.url)
    branchy = synced.revisions[("models", corpus.BRANCHY_MODEL)]
    for revision, key in (("main", "main"), ("dev", "dev"), ("feature/x", "feature/x"), ("v1.0", "v1.0"),
                          ("refs/pr/1", "1"), (branchy["dev"], "dev"), (branchy["dev"][:7], "dev")):
        assert mirror.model_info(corpus.BRANCHY_MODEL, revision=revision).sha == branchy[key], revision
    parquet = synced.sha(corpus.DATASET, "datasets", "parquet")
    info = mirror.dataset_info(corpus.DATASET, revision="refs/convert/parquet")
    assert info.sha == parquet
    path = hf_hub_download(corpus.DATASET, "default/train/0000.parquet", repo_type="dataset",
                           revision="refs/convert/parquet", endpoint=serve_proxy.url, cache_dir=tmp_path)
    expected = upstream_files(synced, corpus.DATASET, "datasets", "parquet")["default/train/0000.parquet"]
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == expected[2]
    assert mirror.model_info(corpus.SINGLE_SEGMENT_MODEL).sha == synced.sha(corpus.SINGLE_SEGMENT_MODEL)


def test_listing_covers_what_is_mirrored(synced: Synced, serve_proxy: ServeProcess) -> None:
    mirror = HfApi(endpoint=serve_proxy.url)
    models = {m.id for m in mirror.list_models()}
    expected = {r for r, t, _ in MIRRORED if t == "models" and r not in (corpus.PRIVATE_MODEL, corpus.GATED_MODEL)}
    assert models == expected  # restricted repos are listed only to granted identities
    assert {m.id for m in mirror.list_models(search="branchy")} == {corpus.BRANCHY_MODEL}
    assert {m.id for m in mirror.list_models(author="hubmirror-trending")} == {corpus.TRENDING_MODELS[0]}
    assert {d.id for d in mirror.list_datasets()} == {corpus.DATASET, corpus.TRENDING_DATASETS[0]}
    assert len(list(mirror.list_models(limit=2))) == 2
    assert corpus.PRIVATE_MODEL in {m.id for m in HfApi(endpoint=serve_proxy.url, token=GRANTED_TOKEN).list_models()}
    assert mirror.whoami(token=GRANTED_TOKEN)["name"] == "granted-user"
    mirror.auth_check(corpus.SMALL_MODEL)


# -- errors are the ones the Hub gives ----------------------------------------------------------------

def _error(fn) -> type[Exception] | None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return type(exc)
    return None


def test_errors_match_upstream(synced: Synced, serve_proxy: ServeProcess, tmp_path: Path) -> None:
    hub = synced.hub
    cases = [
        ("missing repo", lambda ep, tok: hf_hub_download("hubmirror-test/absent", "config.json", endpoint=ep,
                                                         token=tok, cache_dir=tmp_path / "a"), None),
        ("missing revision", lambda ep, tok: hf_hub_download(corpus.SMALL_MODEL, "config.json", revision="nope",
                                                             endpoint=ep, token=tok, cache_dir=tmp_path / "b"), None),
        ("missing file", lambda ep, tok: hf_hub_download(corpus.SMALL_MODEL, "nope.txt", endpoint=ep, token=tok,
                                                         cache_dir=tmp_path / "c"), None),
        ("gated", lambda ep, tok: hf_hub_download(corpus.GATED_MODEL, "config.json", endpoint=ep, token=tok,
                                                  cache_dir=tmp_path / "d"), None),
        ("gated, no grant", lambda ep, tok: hf_hub_download(corpus.GATED_MODEL, "config.json", endpoint=ep,
                                                            token=tok, cache_dir=tmp_path / "e"), "no_access"),
        ("private", lambda ep, tok: HfApi(endpoint=ep, token=tok).model_info(corpus.PRIVATE_MODEL), None),
        ("private, no grant", lambda ep, tok: HfApi(endpoint=ep, token=tok).model_info(corpus.PRIVATE_MODEL),
         "no_access"),
        ("missing repo info", lambda ep, tok: HfApi(endpoint=ep, token=tok).model_info("hubmirror-test/absent"),
         None),
        ("missing revision info", lambda ep, tok: HfApi(endpoint=ep, token=tok).model_info(
            corpus.SMALL_MODEL, revision="nope"), None),
        ("missing tree path", lambda ep, tok: list(HfApi(endpoint=ep, token=tok).list_repo_tree(
            corpus.SMALL_MODEL, path_in_repo="nope")), None),
    ]
    expected_types = {"missing repo": RepositoryNotFoundError, "missing revision": RevisionNotFoundError,
                      "missing file": EntryNotFoundError, "gated": GatedRepoError,
                      "private": RepositoryNotFoundError}
    for name, call, token in cases:
        up = _error(lambda c=call, t=token: c(hub.url, hub.tokens[t] if t else False))
        mine = _error(lambda c=call, t=token: c(serve_proxy.url, UNGRANTED_TOKEN if t else False))
        assert up is not None and mine is up, f"{name}: upstream raised {up}, mirror {mine}"
        base = expected_types.get(name.split(",")[0])
        assert base is None or issubclass(mine, base), f"{name}: {mine}"


# -- HfFileSystem ------------------------------------------------------------------------------------

def test_hffilesystem_reads_like_upstream(synced: Synced, serve_proxy: ServeProcess) -> None:
    mirror = HfFileSystem(endpoint=serve_proxy.url, token=False, skip_instance_cache=True)
    up = HfFileSystem(endpoint=synced.hub.url, token=synced.hub.tokens["service"], skip_instance_cache=True)
    for root in (corpus.SMALL_MODEL, f"datasets/{corpus.DATASET}/data"):
        assert sorted(mirror.ls(root, detail=False)) == sorted(up.ls(root, detail=False))
    path = f"{corpus.SMALL_MODEL}/model.safetensors"
    info = mirror.info(path)
    assert info["size"] == up.info(path)["size"] and info["type"] == "file"
    for offset, n in ((0, 8), (100_000, 4096), (info["size"] - 10, 10)):
        with mirror.open(path, "rb", block_size=1024) as f:
            f.seek(offset)
            got = f.read(n)
        with up.open(path, "rb", block_size=1024) as f:
            f.seek(offset)
            assert got == f.read(n), offset
    csv_path = f"datasets/{corpus.DATASET}/data/train.csv"
    assert mirror.cat(csv_path) == up.cat(csv_path)


def test_no_xet_leaks_from_a_xet_upstream(synced: Synced, serve_proxy: ServeProcess) -> None:
    import httpx

    repo = corpus.XET_MODEL
    auth = {"Authorization": f"Bearer {synced.hub.tokens['service']}"}
    upstream_tree = httpx.get(f"{synced.hub.url}/api/models/{repo}/tree/main?recursive=true", headers=auth).json()
    assert any("xetHash" in e for e in upstream_tree)  # the upstream really is Xet-style
    mirror_tree = httpx.get(f"{serve_proxy.url}/api/models/{repo}/tree/main?recursive=true").json()
    assert mirror_tree and not any("xetHash" in e for e in mirror_tree)
    lfs_paths = [e["path"] for e in mirror_tree if e.get("lfs")]
    info = httpx.post(f"{serve_proxy.url}/api/models/{repo}/paths-info/main", data={"paths": lfs_paths}).json()
    assert info and not any("xetHash" in e for e in info)
    head = httpx.head(f"{serve_proxy.url}/{repo}/resolve/main/{lfs_paths[0]}")
    assert head.status_code == 200
    assert not [k for k in head.headers if k.lower().startswith("x-xet")] and "xet" not in head.headers.get("link", "")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_stays_bounded_under_concurrent_downloads(synced: Synced, serve_proxy: ServeProcess) -> None:
    """16 clients stream the 40 MiB body at once (640 MiB in flight): serve holds a few chunks per stream."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    url = serve_proxy.url + LARGE_BIN
    expected = upstream_files(synced, corpus.LARGE_MODEL, "models")["pytorch_model.bin"]
    before = _rss_mib(serve_proxy.pid)
    peak = [before]

    def fetch(_: int) -> str:
        h = hashlib.sha256()
        with httpx.stream("GET", url, timeout=120) as r:
            for chunk in r.iter_bytes(256 * 1024):
                h.update(chunk)
                peak[0] = max(peak[0], _rss_mib(serve_proxy.pid))
        return h.hexdigest()

    with ThreadPoolExecutor(16) as pool:
        digests = list(pool.map(fetch, range(16)))
    assert digests == [expected[2]] * 16
    assert peak[0] - before < 16 * 12, f"serve grew from {before:.0f} to {peak[0]:.0f} MiB"


def _raw_get(serve: ServeProcess, path: str, receive_buffer: int | None = None) -> socket.socket:
    """A GET sent on a plain socket, for a client that reads at its own pace or hangs up mid-body."""
    address = urlsplit(serve.url)
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)  # before connect: sets the window
    sock.settimeout(30)
    sock.connect((address.hostname, address.port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: mirror\r\nConnection: close\r\n\r\n".encode())
    return sock


def test_a_slow_client_gets_every_byte_intact(synced: Synced, serve_proxy: ServeProcess) -> None:
    """A client slower than S3 keeps serve's write buffer full for the whole body: a chunk's buffer must not
    be refilled from S3 while the socket still holds its bytes (serve reuses four buffers per stream)."""
    expected = upstream_files(synced, corpus.LARGE_MODEL, "models")["pytorch_model.bin"]
    received = bytearray()
    deadline = time.monotonic() + 60
    with _raw_get(serve_proxy, LARGE_BIN, receive_buffer=16 * 1024) as sock:
        while time.monotonic() < deadline:
            data = sock.recv(64 * 1024)
            if not data:
                break
            received += data
            time.sleep(0.0005)
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    assert len(body) == expected[0], "the body was cut short (or the 60 s budget ran out)"
    assert hashlib.sha256(body).hexdigest() == expected[2]


def test_a_client_that_hangs_up_stops_the_s3_read(synced: Synced, serve_proxy: ServeProcess) -> None:
    """Hanging up after the first MiB ends serve's read of the 40 MiB body: a client cannot make serve read
    whole bodies from S3 for nothing (the proxied-bytes counter shows what was read and sent)."""
    import httpx

    def proxied() -> float:
        for line in httpx.get(f"{serve_proxy.url}/metrics").text.splitlines():
            if line.startswith('hubmirror_serve_body_bytes_total{mode="proxy"}'):
                return float(line.split()[-1])
        return 0.0

    size = upstream_files(synced, corpus.LARGE_MODEL, "models")["pytorch_model.bin"][0]
    before = proxied()
    with _raw_get(serve_proxy, LARGE_BIN) as sock:
        received = 0
        while received < 1024 * 1024:
            received += len(sock.recv(65536))
    deadline = time.monotonic() + 10
    while proxied() == before and time.monotonic() < deadline:  # counted when the response ends (within ~1 s)
        time.sleep(0.2)
    assert before < proxied() < before + size / 2
