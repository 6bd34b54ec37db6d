"""plugins/hooks.py: mirror_core Settings from Airflow connections, the environment and the config Variable."""

from __future__ import annotations

import json

import pytest

from mirror_core.errors import ConfigError
from plugins.hooks import mirror_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("AIRFLOW_CONN_HUBMIRROR_S3", "AIRFLOW_CONN_HUBMIRROR_UPSTREAM", "AIRFLOW_VAR_HUBMIRROR_CONFIG",
                 "HUBMIRROR_CONFIG", "HUBMIRROR_S3_ENDPOINT", "HUBMIRROR_S3_BUCKET", "HUBMIRROR_UPSTREAM_URL"):
        monkeypatch.delenv(name, raising=False)


def test_connections_fill_the_settings(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HUBMIRROR_S3", json.dumps({
        "conn_type": "aws", "login": "AK", "password": "SK/with+chars",
        "extra": {"endpoint_url": "http://minio:9000", "region": "eu-west-1", "bucket": "mirror-bucket",
                  "public_endpoint": "https://s3.example.org"}}))
    monkeypatch.setenv("AIRFLOW_CONN_HUBMIRROR_UPSTREAM",
                       json.dumps({"conn_type": "generic", "host": "hub.example.org", "password": "hf_abc"}))
    s = mirror_settings()
    assert (s.s3_endpoint, s.s3_access_key, s.s3_secret_key.get_secret_value()) == \
        ("http://minio:9000", "AK", "SK/with+chars")
    assert (s.s3_bucket, s.s3_region, s.s3_public_endpoint) == ("mirror-bucket", "eu-west-1", "https://s3.example.org")
    assert (s.upstream_url, s.token) == ("https://hub.example.org", "hf_abc")  # a bare host gets https://


def test_missing_connections_fall_back_to_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("HUBMIRROR_S3_ENDPOINT", "http://127.0.0.1:9999")
    monkeypatch.setenv("HUBMIRROR_UPSTREAM_URL", "http://127.0.0.1:8888")
    s = mirror_settings()
    assert (s.s3_endpoint, s.upstream_url) == ("http://127.0.0.1:9999", "http://127.0.0.1:8888")


def test_config_variable_and_its_errors(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_HUBMIRROR_CONFIG", "selection:\n  repos:\n    - {id: org/a, type: dataset}\n")
    s = mirror_settings()
    assert [(r.id, r.type) for r in s.selection.repos] == [("org/a", "datasets")]
    monkeypatch.setenv("AIRFLOW_VAR_HUBMIRROR_CONFIG", "selection:\n  repos:\n    - {id: 'bad id!'}\n")
    with pytest.raises(ConfigError, match=r"hubmirror_config.*selection\.repos\.0\.id"):
        mirror_settings()


def test_unknown_s3_extra_is_named(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HUBMIRROR_S3", json.dumps(
        {"conn_type": "aws", "login": "a", "password": "b", "extra": {"endpoint": "http://x:9000"}}))
    with pytest.raises(ConfigError, match=r"hubmirror_s3.*\['endpoint'\].*endpoint_url"):
        mirror_settings()
