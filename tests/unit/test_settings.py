"""Settings: env names are the operator's interface; bad values fail at start, naming the field."""

import pytest

from mirror_core.errors import ConfigError
from mirror_core.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ["HF_TOKEN", "HUBMIRROR_CONFIG", "HUBMIRROR_UPSTREAM_TOKEN", "HUBMIRROR_S3_BUCKET",
                 "HUBMIRROR_UPSTREAM_URL", "HUBMIRROR_S3_ENDPOINT"]:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_public_hub_without_token():
    s = load_settings()
    assert s.upstream_url == "https://huggingface.co"
    assert s.s3_bucket == "hubmirror"
    assert s.token is None


def test_environment_names_set_upstream_s3_and_token(monkeypatch):
    monkeypatch.setenv("HUBMIRROR_UPSTREAM_URL", "http://127.0.0.1:1234/")
    monkeypatch.setenv("HUBMIRROR_S3_ENDPOINT", "http://127.0.0.1:9000")
    monkeypatch.setenv("HUBMIRROR_S3_BUCKET", "mirror-a")
    monkeypatch.setenv("HF_TOKEN", "hf_fallback")
    s = load_settings()
    assert (s.upstream_url, s.s3.endpoint, s.s3.bucket, s.token) == (
        "http://127.0.0.1:1234", "http://127.0.0.1:9000", "mirror-a", "hf_fallback")
    monkeypatch.setenv("HUBMIRROR_UPSTREAM_TOKEN", "hf_service")
    assert load_settings().token == "hf_service"


def test_yaml_file_and_env_precedence(tmp_path, monkeypatch):
    cfg = tmp_path / "mirror.yaml"
    cfg.write_text(
        "s3_bucket: from-file\n"
        "selection:\n  repos:\n    - {id: org/ds, type: dataset, revisions: [main, 'v*'], allow_patterns: ['*.csv']}\n"
        "  trending:\n    models: {top: 10, tags: [text-generation], max_total_size: 1000}\n"
        "transfer: {engine: hf_transfer, concurrency: 8}\n"
        "retention: {keep_last: 5}\n"
    )
    s = load_settings(cfg)
    assert s.s3_bucket == "from-file"
    repo = s.selection.repos[0]
    assert (repo.repo.type, repo.id, repo.revisions) == ("datasets", "org/ds", ["main", "v*"])
    assert repo.allow_patterns == ["*.csv"]
    assert s.selection.trending.models.top == 10 and s.transfer.engine == "hf_transfer"
    assert s.retention.keep_last == 5
    monkeypatch.setenv("HUBMIRROR_S3_BUCKET", "from-env")
    assert load_settings(cfg).s3_bucket == "from-env"
    monkeypatch.setenv("HUBMIRROR_CONFIG", str(cfg))
    monkeypatch.delenv("HUBMIRROR_S3_BUCKET")
    assert load_settings().s3_bucket == "from-file"


@pytest.mark.parametrize("text,field", [
    ("transfer: {engine: turbo}", "transfer.engine"),
    ("transfer: {concurrency: 0}", "transfer.concurrency"),
    ("selection: {repos: [{id: '../x'}]}", "selection.repos.0.id"),
    ("selection: {repos: [{id: a/b, type: kernel}]}", "selection.repos.0.type"),
    ("s3_bucket: Not_A_Bucket", "s3_bucket"),
    ("upstream_url: ftp://x", "upstream_url"),
    ("surprise: 1", "surprise"),
    ("retention: {keep_last: 0}", "retention.keep_last"),
])
def test_bad_settings_name_the_field(tmp_path, text, field):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert field in str(err.value) and str(cfg) in str(err.value)


def test_unreadable_or_malformed_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)
    bad.write_text("- a list")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(bad)


def test_airflow_knobs_read_their_environment_names(monkeypatch):
    from mirror_core.settings import airflow_knobs

    for name, value in {"HUBMIRROR_UPSTREAM_RETRIES": "2", "HUBMIRROR_RETRY_DELAY_SECONDS": "1.5",
                        "HUBMIRROR_MAX_RETRY_DELAY_SECONDS": "9", "HUBMIRROR_UPSTREAM_POOL_SLOTS": "7",
                        "HUBMIRROR_SYNC_SCHEDULE": " off ", "HUBMIRROR_SERVE_URL": "http://m/"}.items():
        monkeypatch.setenv(name, value)
    knobs = airflow_knobs()
    assert (knobs.upstream_retries, knobs.retry_delay_seconds, knobs.max_retry_delay_seconds,
            knobs.upstream_pool_slots, knobs.sync_cron, knobs.serve_url) == (2, 1.5, 9, 7, None, "http://m/")
    monkeypatch.setenv("HUBMIRROR_UPSTREAM_POOL_SLOTS", "many")
    with pytest.raises(ConfigError, match="HUBMIRROR_UPSTREAM_POOL_SLOTS"):
        airflow_knobs()
