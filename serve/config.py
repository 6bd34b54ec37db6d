"""Settings of the read service: the sync side's S3 settings plus HUBMIRROR_SERVE_* knobs.

serve reuses `mirror_core.settings` for the bucket (HUBMIRROR_S3_*, including the public endpoint
used for presigned redirects) so one environment drives both sides; it never needs the upstream token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mirror_core.errors import ConfigError
from mirror_core.settings import S3Settings, load_settings


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
    verify_full_gets: bool = Field(default=True, description="hash proxied full GETs; abort on mismatch")
    refs_ttl: float = Field(default=5.0, ge=0, description="seconds a refs.json read is trusted")
    missing_ttl: float = Field(default=5.0, ge=0, description="seconds an absent repo is remembered")
    list_ttl: float = Field(default=30.0, ge=0, description="seconds the repo listing is trusted")
    manifest_cache_files: int = Field(default=2_000_000, ge=1000,
                                      description="LRU bound: total file entries of cached manifests")
    page_cache_bytes: int = Field(default=64 * 1024**2, ge=0, description="LRU of serialised tree pages")
    anonymous: bool = Field(default=True, description="tokenless reads of public mirrored repos")
    tokens: list[TokenGrant] = Field(default_factory=list)
    tokens_file: Path | None = Field(default=None, description="YAML list of tokens (see TokenGrant)")
    airflow_url: str | None = None
    airflow_username: str | None = None
    airflow_password: SecretStr | None = None
    ondemand_interval: float = Field(default=600.0, ge=0, description="min seconds between triggers per repo")
    ondemand_anonymous: bool = Field(default=True, description="tokenless requests may trigger on-demand syncs")
    page_size: int = Field(default=1000, ge=1, le=10_000)
    expand_page_size: int = Field(default=50, ge=1, le=10_000)
    access_log: bool = Field(default=True, description="JSON line per request on stderr, written in batches")

    @field_validator("public_url", "airflow_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} must be an http:// or https:// URL")
        return v.rstrip("/") if v else v

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens_json(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError(f"HUBMIRROR_SERVE_TOKENS must be a JSON list of tokens: {exc}") from None
        return v

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

    @property
    def airflow_enabled(self) -> bool:
        return bool(self.airflow_url and self.airflow_username and self.airflow_password)


def load_serve_settings(config_file: str | Path | None = None, **overrides: Any) -> ServeSettings:
    """HUBMIRROR_S3_* (and the YAML config) for the bucket, HUBMIRROR_SERVE_* for the rest."""
    if "s3" not in overrides:
        overrides["s3"] = load_settings(config_file).s3
    try:
        return ServeSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"HUBMIRROR_SERVE_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid serve settings: {problems}") from None
