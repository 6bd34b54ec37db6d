"""`hubmirror verify` and `hubmirror gc` end to end through the CLI entry point, on a real bucket."""

from __future__ import annotations

import hashlib
import json

import pytest

from hubmirror.cli import main
from mirror_core.inventory import list_blobs
from mirror_core.layout import RUNS_PREFIX, RepoRef, blob_key
from tests.bucket import RepoBuilder


@pytest.fixture
def cli_env(bucket_settings, monkeypatch):
    s3 = bucket_settings
    for name, value in {"S3_ENDPOINT": s3.s3_endpoint, "S3_ACCESS_KEY": s3.s3_access_key,
                        "S3_SECRET_KEY": s3.s3_secret_key.get_secret_value(), "S3_BUCKET": s3.s3_bucket,
                        "RETENTION": json.dumps({"keep_last": 1, "gc_grace_seconds": 0})}.items():
        monkeypatch.setenv(f"HUBMIRROR_{name}", value)
    monkeypatch.delenv("HUBMIRROR_CONFIG", raising=False)
    return bucket_settings


def _reports(store, kind: str) -> list[dict]:
    return [r for r in (store.get_json(o.key) for o in store.list(RUNS_PREFIX)) if r["kind"] == kind]


def test_verify_cli_reports_damage_and_exit_code(cli_env, store, capsys):
    builder = RepoBuilder(store, RepoRef.parse("org/cli"))
    builder.commit("c1", {"a.txt": b"first", "b.txt": b"second"})
    assert main(["verify"]) == 0
    assert "bodies re-hashed" in capsys.readouterr().out
    store.put_bytes(blob_key(hashlib.sha256(b"first").hexdigest()), b"tampered")
    assert main(["verify", "--sample", "5"]) == 1
    out = capsys.readouterr().out
    assert "corrupt " + hashlib.sha256(b"first").hexdigest() in out and "verify --repair" in out
    reports = _reports(store, "verify")
    assert sorted(r["ok"] for r in reports) == [False, True]
    assert [r["corrupt"] for r in reports if not r["ok"]] == [1]
    assert main(["verify", "--sample", "0"]) == 2
    assert "--sample must be a positive number" in capsys.readouterr().err


def test_gc_cli_dry_run_then_real(cli_env, store, capsys):
    builder = RepoBuilder(store, RepoRef.parse("org/cli-gc"))
    builder.commit("c1", {"w.bin": b"old weights" * 100})
    builder.commit("c2", {"w.bin": b"new weights" * 100})
    old = hashlib.sha256(b"old weights" * 100).hexdigest()
    assert main(["gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"body {old}" in out and "1.1 kB" in out and "would be" in out
    assert old in list_blobs(store)[0] and not _reports(store, "gc")
    assert main(["gc"]) == 0
    assert old not in list_blobs(store)[0]
    [report] = _reports(store, "gc")
    assert report["deleted"] == 1 and report["bytes_reclaimed"] == 1100 and len(report["retention"]["removed"]) == 1
