"""Settings of the read service: the sync side's S3 settings plus HUBMIRROR_SERVE_* knobs.

serve reuses `mirror_core.settings` for the bucket (HUBMIRROR_S3_*, including the public endpoint
used for presigned redirects) so one environment drives both sides; it never needs the upstream token.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import urllib3
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mirror_core.errors import ConfigError
from mirror_core.settings import S3Settings, load_settings

_VERIFY_BOOLEANS = {"true": "fast", "1": "fast", "yes": "fast", "false": "off", "0": "off", "no": "off"}


class TokenGrant(BaseModel):
    """One mirror token: who it is and which restricted repos (fnmatch on `type:id` or `id`) it may read."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr
    name: str
    orgs: list[str] = Field(default_factory=list)
    grants: list[str] = Field(default_factory=list, description="patterns like `org/*`, `datasets:org/x`, `*`")
    admin: bool = False


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUBMIRROR_SERVE_", extra="forbid", populate_by_name=True)

    s3: S3Settings
    mode: Literal["proxy", "redirect"] = "proxy"
    public_url: str | None = Field(default=None, description="absolute URL clients use; else the request Host")
    redirect_min_size: int = Field(default=8 * 1024**2, ge=0, description="smaller bodies are always proxied")
    presign_seconds: int = Field(default=600, ge=10, le=7 * 24 * 3600)
    chunk_size: int = Field(default=1024**2, ge=64 * 1024, le=64 * 1024**2)
    verify_full_gets: Literal["fast", "sha256", "off"] = Field(
        default="fast", description="check proxied full GETs (serve.resolve.BodyCheck); abort on mismatch")
    refs_ttl: float = Field(default=5.0, ge=0, description="seconds a refs.json read is trusted")
    missing_ttl: float = Field(default=5.0, ge=0, description="seconds an absent repo is remembered")
    list_ttl: float = Field(default=30.0, ge=0, description="seconds before checking for a new catalog")
    manifest_cache_files: int = Field(default=2_000_000, ge=1000,
                                      description="LRU bound: total file entries of cached manifests")
    repo_cache_entries: int = Field(default=20_000, ge=100,
                                    description="LRU bound: repos (and looked-up shas) whose state is remembered")
    max_body_bytes: int = Field(default=1024**2, ge=1024, description="larger request bodies get a 413")
    s3_connect_timeout: float = Field(default=2.0, gt=0, description="seconds to connect to S3 before a 503")
    s3_read_timeout: float = Field(default=5.0, gt=0, description="seconds S3 may stay silent before a 503")
    s3_retries: int = Field(default=1, ge=0, le=5, description="retries of failed S3 connects (never of reads)")
    page_cache_bytes: int = Field(default=64 * 1024**2, ge=0, description="LRU of serialised tree pages")
    anonymous: bool = Field(default=True, description="tokenless reads of public mirrored repos")
    tokens: list[TokenGrant] = Field(default_factory=list)
    tokens_file: Path | None = Field(default=None, description="YAML list of tokens (see TokenGrant)")
    airflow_url: str | None = None
    airflow_username: str | None = None
    airflow_password: SecretStr | None = None
    ondemand_interval: float = Field(default=600.0, ge=0, description="min seconds between triggers per repo")
    ondemand_anonymous: bool = Field(default=False, description="tokenless requests may trigger on-demand syncs")
    ondemand_allow: Annotated[list[str], NoDecode] = Field(default_factory=list,
                                      description="patterns (`org/*`, `datasets:org/*`) on-demand syncs may fetch")
    ondemand_max_bytes: int = Field(default=20 * 1024**3, ge=0,
                                    description="repos larger than this upstream are not synced on demand")
    ondemand_rate: float = Field(default=6.0, gt=0, description="on-demand syncs per minute, all workers together")
    ondemand_burst: int = Field(default=10, ge=1, description="on-demand syncs allowed at once after a quiet spell")
    ondemand_negative_ttl: float = Field(default=3600.0, ge=0,
                                         description="seconds a repo missing upstream (or refused) is not asked again")
    upstream_url: str = Field(default="https://huggingface.co",
                              description="where on-demand checks look repos up, anonymously (HUBMIRROR_UPSTREAM_URL)")
    runtime_dir: Path | None = Field(default=None, description="state shared by the workers (on-demand limits)")
    page_size: int = Field(default=1000, ge=1, le=10_000)
    expand_page_size: int = Field(default=50, ge=1, le=10_000)
    access_log: bool = Field(default=False, description="JSON line per request on stderr, written in batches")

    @field_validator("public_url", "airflow_url", "upstream_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} must be an http:// or https:// URL")
        return v.rstrip("/") if v else v

    @field_validator("verify_full_gets", mode="before")
    @classmethod
    def _verify_bool(cls, v: Any) -> Any:
        """The switch was a boolean before it had modes: true still means checked, false off."""
        if isinstance(v, bool):
            return "fast" if v else "off"
        return _VERIFY_BOOLEANS.get(v.strip().lower(), v) if isinstance(v, str) else v

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens_json(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError(f"HUBMIRROR_SERVE_TOKENS must be a JSON list of tokens: {exc}") from None
        return v

    @field_validator("ondemand_allow", mode="before")
    @classmethod
    def _patterns(cls, v: Any) -> Any:
        """A JSON list, or the friendlier comma-separated `org/*,datasets:org/*`."""
        if isinstance(v, str):
            v = v.strip()
            if not v.startswith("["):
                return [p.strip() for p in v.split(",") if p.strip()]
            try:
                return json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError(f"use a JSON list or comma-separated patterns like `org/*,datasets:org/*`: {exc}") \
                    from None
        return v

    @property
    def ondemand_dir(self) -> Path:
        """Where the workers of this instance share their on-demand bookkeeping (one SQLite file)."""
        if self.runtime_dir is not None:
            return self.runtime_dir
        return Path(tempfile.gettempdir()) / f"hubmirror-serve-{os.getuid()}"

    def all_tokens(self) -> list[TokenGrant]:
        """Inline tokens plus those of tokens_file (read at startup)."""
        if self.tokens_file is None:
            return list(self.tokens)
        try:
            data = yaml.safe_load(self.tokens_file.read_text()) or []
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read HUBMIRROR_SERVE_TOKENS_FILE {self.tokens_file}: {exc}") from None
        if isinstance(data, dict):
            data = data.get("tokens", [])
        try:
            return list(self.tokens) + [TokenGrant.model_validate(item) for item in data]
        except ValidationError as exc:
            raise ConfigError(f"invalid token list in {self.tokens_file}: {exc}") from None

    def s3_timeout(self) -> urllib3.Timeout:
        """Short: an S3 that accepts connections and then stays silent must become a 503 in seconds."""
        return urllib3.Timeout(connect=self.s3_connect_timeout, read=self.s3_read_timeout)

    def s3_retry(self) -> urllib3.Retry:
        """Connects and 5xx are retried; a read that timed out is not (it would only double the wait)."""
        return urllib3.Retry(total=self.s3_retries, connect=self.s3_retries, read=0, status=self.s3_retries,
                             backoff_factor=0.1, status_forcelist=(500, 502, 503, 504))

    @property
    def airflow_enabled(self) -> bool:
        return bool(self.airflow_url and self.airflow_username and self.airflow_password)


def load_serve_settings(config_file: str | Path | None = None, **overrides: Any) -> ServeSettings:
    """HUBMIRROR_S3_* (and the YAML config) for the bucket, HUBMIRROR_SERVE_* for the rest."""
    if "s3" not in overrides or "upstream_url" not in overrides:
        shared = load_settings(config_file)
        overrides.setdefault("s3", shared.s3)
        if not os.environ.get("HUBMIRROR_SERVE_UPSTREAM_URL"):
            overrides.setdefault("upstream_url", shared.upstream_url)  # the URL only: serve never gets the token
    try:
        return ServeSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"HUBMIRROR_SERVE_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid serve settings: {problems}") from None
