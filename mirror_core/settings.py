"""hubmirror settings: a YAML file (`--config` / HUBMIRROR_CONFIG) plus HUBMIRROR_* environment.

The flat HUBMIRROR_UPSTREAM_* / HUBMIRROR_S3_* names are the operator's interface; the YAML holds
what is too structured for environment variables (selection, trending filters, engine, retention).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from mirror_core.errors import ConfigError
from mirror_core.layout import RepoRef, RepoType, repo_type, split_repo_id

DEFAULT_UPSTREAM = "https://huggingface.co"
# Where the real Hub sends file bodies; redirects elsewhere are refused unless configured.
DEFAULT_ALLOWED_HOSTS = ["huggingface.co", "hf.co", "*.huggingface.co", "*.hf.co", "*.xethub.hf.co"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RepoSelection(_Section):
    """One explicitly configured repo."""

    id: str
    type: RepoType = "models"
    revisions: list[str] = Field(default_factory=lambda: ["main"])  # names or fnmatch globs
    allow_patterns: list[str] | None = None
    ignore_patterns: list[str] | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        split_repo_id(v)
        return v

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: str) -> str:
        return repo_type(v)

    @field_validator("revisions")
    @classmethod
    def _revisions(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("give at least one revision (e.g. [main])")
        return v

    @property
    def repo(self) -> RepoRef:
        return RepoRef.parse(self.id, self.type)


class TrendingFilter(_Section):
    """Which trending repos are worth mirroring."""

    top: int = Field(default=0, ge=0, le=10_000)
    max_total_size: int | None = Field(default=None, ge=0, description="bytes; larger repos are skipped")
    include_gated: bool = False
    tags: list[str] = Field(default_factory=list, description="repo must carry all of these")
    exclude_tags: list[str] = Field(default_factory=list)
    libraries: list[str] = Field(default_factory=list, description="any of these library_name values")
    pipeline_tags: list[str] = Field(default_factory=list, description="any of these pipeline_tag values")


class TrendingSettings(_Section):
    models: TrendingFilter = Field(default_factory=TrendingFilter)
    datasets: TrendingFilter = Field(default_factory=TrendingFilter)


class SelectionSettings(_Section):
    repos: list[RepoSelection] = Field(default_factory=list)
    trending: TrendingSettings = Field(default_factory=TrendingSettings)


class TransferSettings(_Section):
    # stream is the default: it overlaps download, hashing and upload (bench/sync_throughput.py);
    # hf_transfer/auto pay off only where one connection cannot fill the link to the upstream.
    engine: Literal["auto", "stream", "hf_transfer"] = "stream"
    hf_transfer_threshold: int = Field(default=256 * 1024**2, ge=0,
                                       description="auto: LFS files at least this big use hf_transfer")
    concurrency: int = Field(default=4, ge=1, le=64, description="files fetched at once per repo")
    part_size: int = Field(default=16 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    allowed_redirect_hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_HOSTS))
    timeout: float = Field(default=60, gt=0)
    max_retries: int = Field(default=5, ge=0, le=50)
    backoff_base: float = Field(default=1.0, gt=0, description="first wait after a 5xx/network error, doubling")
    max_wait: float = Field(default=60, gt=0, description="cap on one backoff or Retry-After wait, seconds")
    max_pages: int = Field(default=1000, ge=1, description="pages of one upstream listing (tree, commits, trending)")
    max_entries: int = Field(default=1_000_000, ge=1, description="entries of one upstream listing")


class RetentionSettings(_Section):
    keep_last: int = Field(default=3, ge=1, description="commits kept per branch (tagged commits are always kept)")
    gc_grace_seconds: int = Field(default=24 * 3600, ge=0)


class S3Settings(_Section):
    """Just what is needed to open the bucket (serve needs no more than this)."""

    endpoint: str
    access_key: str
    secret_key: SecretStr
    bucket: str
    region: str
    public_endpoint: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUBMIRROR_", extra="forbid", populate_by_name=True)

    upstream_url: str = DEFAULT_UPSTREAM
    upstream_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("HUBMIRROR_UPSTREAM_TOKEN", "HF_TOKEN", "upstream_token")
    )
    s3_endpoint: str = "http://127.0.0.1:9000"
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "hubmirror"
    s3_region: str = "us-east-1"
    s3_public_endpoint: str | None = None

    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    transfer: TransferSettings = Field(default_factory=TransferSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @field_validator("upstream_url", "s3_endpoint", "s3_public_endpoint")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} must be an http:// or https:// URL")
        return v.rstrip("/") if v else v

    @field_validator("s3_bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        if not (3 <= len(v) <= 63) or not v.replace("-", "").replace(".", "").isalnum() or v != v.lower():
            raise ValueError(f"{v!r} is not an S3 bucket name (3-63 lowercase letters, digits, '-', '.')")
        return v

    @property
    def s3(self) -> S3Settings:
        return S3Settings(endpoint=self.s3_endpoint, access_key=self.s3_access_key,
                          secret_key=self.s3_secret_key, bucket=self.s3_bucket, region=self.s3_region,
                          public_endpoint=self.s3_public_endpoint)

    @property
    def token(self) -> str | None:
        return self.upstream_token.get_secret_value() if self.upstream_token else None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        # Environment beats the file beats defaults; explicit arguments beat everything.
        return init_settings, env_settings, InitSettingsSource(settings_cls, _yaml_values())


# The Airflow pool every upstream-facing task runs in. The plugin's listener creates it (plugins/listeners.py).
UPSTREAM_POOL = "hf_upstream"
UPSTREAM_POOL_DESCRIPTION = "hubmirror: concurrent requests to the upstream hub (one slot = one repo being synced)"


class AirflowKnobs(BaseSettings):
    """The Airflow side's HUBMIRROR_* knobs, read in this one place by the DAG files, the plugin, the local
    stack and serve's status feed (which names the next sync). Plain values: mirror_core never imports Airflow.

    HUBMIRROR_UPSTREAM_RETRIES, HUBMIRROR_RETRY_DELAY_SECONDS (doubled each try), HUBMIRROR_MAX_RETRY_DELAY_SECONDS,
    HUBMIRROR_SYNC_SCHEDULE (cron of hubmirror_sync; "", "none" or "off": only on new trending snapshots),
    HUBMIRROR_UPSTREAM_POOL_SLOTS (slots of `hf_upstream` when hubmirror creates it) and HUBMIRROR_SERVE_URL
    (where the plugin's Mirror page links repos).
    """

    model_config = SettingsConfigDict(env_prefix="HUBMIRROR_", extra="ignore")

    upstream_retries: int = Field(default=4, ge=0)
    retry_delay_seconds: float = Field(default=60, ge=0)
    max_retry_delay_seconds: float = Field(default=1800, ge=0)
    sync_schedule: str = "0 */6 * * *"
    upstream_pool_slots: int = Field(default=4, ge=1)
    serve_url: str = ""

    @property
    def sync_cron(self) -> str | None:
        """The sync DAG's cron line, None when it runs only on new trending snapshots."""
        spec = self.sync_schedule.strip()
        return None if spec.lower() in ("", "none", "off") else spec


def airflow_knobs() -> AirflowKnobs:
    """The knobs, with an error that names the environment variable when one is malformed."""
    try:
        return AirflowKnobs()
    except ValidationError as exc:
        problems = "; ".join(f"HUBMIRROR_{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid Airflow settings: {problems}") from None


_CONFIG_FILE: ContextVar[Path | None] = ContextVar("hubmirror_config_file", default=None)


def _yaml_values() -> dict[str, Any]:
    path = _CONFIG_FILE.get() or (Path(os.environ["HUBMIRROR_CONFIG"]) if os.environ.get("HUBMIRROR_CONFIG") else None)
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"config file {path} is not valid YAML: {problem}{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def _source(field: str, path: str | Path | None) -> str:
    """Where a top-level setting came from, so an error blames the right place."""
    names = [f"HUBMIRROR_{field.upper()}"] + (["HF_TOKEN"] if field == "upstream_token" else [])
    env = next((n for n in names if n in os.environ), None)
    if env:
        return f" [from environment variable {env}]"
    return f" [from config file {path}]" if path else ""


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings, turning validation errors into one ConfigError naming each bad field."""
    token = _CONFIG_FILE.set(Path(config_file) if config_file else None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        path = _CONFIG_FILE.get() or os.environ.get("HUBMIRROR_CONFIG")
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            + (f" (got {err['input']!r})" if not isinstance(err.get("input"), dict | list) else "")
            + _source(str(err["loc"][0]) if err["loc"] else "", path)
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    finally:
        _CONFIG_FILE.reset(token)

