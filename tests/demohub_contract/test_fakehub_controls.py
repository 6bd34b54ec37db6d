"""Range and CDN signature rules, fault knobs, upstream commits, Xet-style repos, independence."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import EntryNotFoundError

from hubmirror.demohub.corpus import LARGE_MODEL, SMALL_MODEL, XET_MODEL

FAKEHUB_DIR = Path(__file__).resolve().parents[2] / "hubmirror" / "demohub"


@pytest.fixture
def hub(fakehub):
    fakehub.reset()
    yield fakehub
    fakehub.reset()


def cdn_location(hub, repo_id: str, path: str) -> str:
    r = httpx.head(f"{hub.url}/{repo_id}/resolve/main/{path}")
    assert r.status_code == 302
    return r.headers["location"]


def test_resolve_head_and_ranges_on_a_regular_file(hub):
    record = hub.file_record("model", SMALL_MODEL, "config.json")
    url = f"{hub.url}/{SMALL_MODEL}/resolve/main/config.json"
    head = httpx.head(url, headers={"accept-encoding": "identity"})
    assert int(head.headers["content-length"]) == record["size"]
    assert head.headers["etag"] == f'"{record["oid"]}"' and head.headers["accept-ranges"] == "bytes"
    whole = httpx.get(url).content
    part = httpx.get(url, headers={"range": "bytes=5-14"})
    assert (part.status_code, part.content) == (206, whole[5:15])
    assert part.headers["content-range"] == f"bytes 5-14/{len(whole)}"
    assert httpx.get(url, headers={"range": "bytes=10-999999"}).content == whole[10:]
    assert httpx.get(url, headers={"range": "bytes=-4"}).content == whole[-4:]
    past = httpx.get(url, headers={"range": f"bytes={len(whole)}-"})
    assert (past.status_code, past.headers["content-range"]) == (416, f"bytes */{len(whole)}")
    assert hub.counters()["resolve"]["bytes"] == len(whole) + 10 + (len(whole) - 10) + 4 + len(past.content)


def test_cdn_refuses_forged_and_expired_urls(hub):
    location = cdn_location(hub, LARGE_MODEL, "pytorch_model.bin")
    assert location.startswith(hub.cdn_url + "/lfs/")
    ok = httpx.get(location, headers={"range": "bytes=0-1023"})
    assert ok.status_code == 206 and len(ok.content) == 1024
    forged = re.sub(
        r"signature=([0-9a-f])", lambda m: "signature=" + ("1" if m.group(1) != "1" else "2"), location
    )
    assert httpx.get(forged).status_code == 403
    other = hub.file_record("model", SMALL_MODEL, "model.safetensors")["sha256"]
    assert httpx.get(re.sub(r"/lfs/[0-9a-f]{64}", f"/lfs/{other}", location)).status_code == 403
    longer = re.sub(r"expires=(\d+)", lambda m: f"expires={int(m.group(1)) + 3600}", location)
    assert httpx.get(longer).status_code == 403
    hub.configure(cdn_ttl=-10)
    expired = httpx.get(cdn_location(hub, LARGE_MODEL, "pytorch_model.bin"))
    assert expired.status_code == 403 and "expired" in expired.text


def test_error_and_rate_limit_faults_fire_the_requested_number_of_times(hub):
    hub.add_fault("error", kind="api", path="/tiny-bert", count=2, status=502)
    statuses = [httpx.get(f"{hub.url}/api/models/{SMALL_MODEL}").status_code for _ in range(3)]
    assert statuses == [502, 502, 200]
    assert httpx.get(f"{hub.url}/api/models/tinygpt").status_code == 200
    assert [(f["seen"], f["fired"]) for f in hub.faults()] == [(3, 2)]
    hub.set_faults({"action": "rate_limit", "kind": "resolve", "retry_after": 7, "skip": 1, "count": 1})
    url = f"{hub.url}/{SMALL_MODEL}/resolve/main/config.json"
    first, second, third = (httpx.head(url) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (200, 429, 200)
    assert second.headers["retry-after"] == "7" and second.headers["ratelimit"] == '"api";r=0;t=7'
    assert hub.counters()["resolve"]["requests"] == 3


def test_one_request_gets_one_answer_fault(hub):
    """Two answer rules that match one request: the first answers it, the second waits for the next."""
    hub.set_faults({"action": "error", "kind": "resolve", "status": 502, "count": 1},
                   {"action": "rate_limit", "kind": "resolve", "path": "config.json", "retry_after": 1, "count": 1})
    url = f"{hub.url}/{SMALL_MODEL}/resolve/main/config.json"
    assert [httpx.head(url).status_code for _ in range(3)] == [502, 429, 200]
    assert [f["fired"] for f in hub.faults()] == [1, 1]


def test_drop_corrupt_and_delay_faults(hub):
    location = cdn_location(hub, LARGE_MODEL, "pytorch_model.bin")
    clean = httpx.get(location, headers={"range": "bytes=0-65535"}).content
    hub.add_fault("drop", kind="cdn", count=1, after_bytes=10_000)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(location, headers={"range": "bytes=0-65535"})
    assert hub.requests()[-1]["bytes"] == 10_000 and hub.requests()[-1]["fault"] == "drop"
    hub.set_faults({"action": "corrupt", "kind": "cdn", "count": 1, "offset": 1000})
    bad = httpx.get(location, headers={"range": "bytes=0-65535"}).content
    assert len(bad) == len(clean) and [i for i in range(len(clean)) if bad[i] != clean[i]] == [1000]
    hub.set_faults({"action": "delay", "kind": "api", "delay": 0.4, "count": 1})
    start = time.monotonic()
    assert httpx.get(f"{hub.url}/api/models/{SMALL_MODEL}").status_code == 200
    assert time.monotonic() - start >= 0.4


def test_client_resumes_a_dropped_cdn_download(hub, download):
    """The client writes whole 10 MiB chunks, so after a drop in the third it resumes at 20 MiB."""
    chunk = constants.DOWNLOAD_CHUNK_SIZE
    hub.add_fault("drop", kind="cdn", count=1, after_bytes=2 * chunk + 12345)
    path = download(LARGE_MODEL, "pytorch_model.bin")
    record = hub.file_record("model", LARGE_MODEL, "pytorch_model.bin")
    assert record["size"] > 2 * chunk + 12345
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
    cdn = [(r["status"], r["range"], r["bytes"]) for r in hub.requests() if r["kind"] == "cdn"]
    assert cdn == [(200, None, 2 * chunk + 12345), (206, f"bytes={2 * chunk}-", record["size"] - 2 * chunk)]


def test_commits_change_what_upstream_serves(hub, download):
    repo_id = f"hubmirror-test/scratch-{uuid.uuid4().hex[:8]}"
    first = hub.create_repo("model", repo_id, {"a.txt": b"one\n", "b.txt": b"bee\n"})
    api = HfApi(endpoint=hub.url, token=False)
    assert api.model_info(repo_id).sha == first
    second = hub.commit(
        "model", repo_id, {"a.txt": b"two\n", "b.txt": None, "w.bin": b"\0" * 100}, message="change a, drop b"
    )
    assert second != first and api.model_info(repo_id).sha == second
    assert download(repo_id, "a.txt").read_bytes() == b"two\n"
    with pytest.raises(EntryNotFoundError):
        download(repo_id, "b.txt")
    assert hub.file_record("model", repo_id, "w.bin")["lfs"] is True  # by extension
    assert httpx.head(f"{hub.url}/{repo_id}/resolve/main/w.bin").status_code == 302
    assert api.model_info(repo_id, revision=first).sha == first  # old commits stay resolvable
    assert [c.commit_id for c in api.list_repo_commits(repo_id)] == [second, first]
    assert hub.create_tag("model", repo_id, "v1", revision=first) == first
    assert {t.name: t.target_commit for t in api.list_repo_refs(repo_id).tags} == {"v1": first}


def test_xet_style_repo_advertises_xet_but_plain_http_still_works(hub, download, monkeypatch):
    head = httpx.head(f"{hub.url}/{XET_MODEL}/resolve/main/model.safetensors")
    assert re.fullmatch(r"[0-9a-f]{64}", head.headers["x-xet-hash"])
    assert 'rel="xet-auth"' in head.headers["link"]
    tree = httpx.get(f"{hub.url}/api/models/{XET_MODEL}/tree/main").json()
    assert any("xetHash" in e for e in tree)
    assert "x-xet-hash" not in httpx.head(f"{hub.url}/{SMALL_MODEL}/resolve/main/model.safetensors").headers
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    path = download(XET_MODEL, "model.safetensors")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == hub.file_record("model", XET_MODEL, "model.safetensors")["sha256"]


def test_fakehub_shares_no_code_with_serve():
    assert len(list(FAKEHUB_DIR.rglob("*.py"))) > 5
    offenders = [
        str(p)
        for p in FAKEHUB_DIR.rglob("*.py")
        if re.search(r"^\s*(import serve\b|from serve\b)", p.read_text(), re.M)
    ]
    assert offenders == []
    uses_hf = [str(p) for p in FAKEHUB_DIR.rglob("*.py") if "huggingface_hub" in p.read_text()]
    assert uses_hf == []
