"""Airflow hooks that turn Airflow Connections and a Variable into `mirror_core` Settings.

Why hooks: credentials belong in Airflow's connection store (UI, env, secrets backend), not in DAG
files, while mirror_core must stay a plain library that never imports Airflow. These hooks are the
bridge; a DAG task calls `mirror_settings()` and hands the result to mirror_core.

Connections (all optional; a missing one falls back to the HUBMIRROR_* environment):

* ``hubmirror_s3`` (conn_type ``aws``): ``login`` = access key, ``password`` = secret key,
  extra ``{"endpoint_url": "http://minio:9000", "region_name": "us-east-1", "bucket": "hubmirror",
  "public_endpoint": "https://s3.example.org"}`` (``region`` is accepted for ``region_name``).
* ``hubmirror_upstream`` (conn_type ``generic``): ``host`` = upstream URL (``https://huggingface.co``;
  a bare host name gets ``https://``, or ``schema`` if set, and ``port`` if set), ``password`` = the
  service token.

Variable ``hubmirror_config`` (optional): the mirror settings YAML (selection, trending, transfer,
retention) as text; absent -> the file named by HUBMIRROR_CONFIG, if any. Connection fields beat
the environment, which beats the YAML.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from airflow.sdk import BaseHook, Variable
from airflow.sdk.exceptions import AirflowNotFoundException, AirflowRuntimeError

from mirror_core.errors import ConfigError
from mirror_core.settings import Settings, load_settings

S3_CONN_ID = "hubmirror_s3"
UPSTREAM_CONN_ID = "hubmirror_upstream"
CONFIG_VARIABLE = "hubmirror_config"


def _connection(conn_id: str):
    """The connection, or None when it is not defined anywhere (env, secrets backend, DB)."""
    try:
        return BaseHook.get_connection(conn_id)
    except (AirflowNotFoundException, AirflowRuntimeError):
        return None


class MirrorS3Hook(BaseHook):
    """The mirror's bucket (MinIO, SeaweedFS or any S3) from an ``aws`` connection."""

    conn_name_attr = "s3_conn_id"
    default_conn_name = S3_CONN_ID
    conn_type = "aws"
    hook_name = "hubmirror S3 bucket"

    def __init__(self, s3_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.s3_conn_id = s3_conn_id

    def settings_overrides(self) -> dict[str, Any]:
        """Settings fields this connection defines (empty when the connection is absent)."""
        conn = _connection(self.s3_conn_id)
        if conn is None:
            return {}
        extra = conn.extra_dejson or {}
        unknown = set(extra) - {"endpoint_url", "region_name", "region", "bucket", "public_endpoint"}
        if unknown:
            raise ConfigError(
                f"connection {self.s3_conn_id!r}: unknown extra field(s) {sorted(unknown)}; allowed are "
                "endpoint_url, region_name (or region), bucket, public_endpoint"
            )
        values = {
            "s3_endpoint": extra.get("endpoint_url"),
            "s3_region": extra.get("region_name") or extra.get("region"),
            "s3_bucket": extra.get("bucket"),
            "s3_public_endpoint": extra.get("public_endpoint"),
            "s3_access_key": conn.login,
            "s3_secret_key": conn.password,
        }
        return {k: v for k, v in values.items() if v}

    def get_conn(self):
        """A mirror_core Store on this bucket (what a task usually wants from the hook)."""
        from mirror_core.store import Store

        return Store(mirror_settings(s3_conn_id=self.s3_conn_id).s3)


class UpstreamHook(BaseHook):
    """The upstream hub (huggingface.co or any HF-compatible hub) from a ``generic`` connection."""

    conn_name_attr = "upstream_conn_id"
    default_conn_name = UPSTREAM_CONN_ID
    conn_type = "generic"
    hook_name = "hubmirror upstream hub"

    def __init__(self, upstream_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream_conn_id = upstream_conn_id

    def settings_overrides(self) -> dict[str, Any]:
        conn = _connection(self.upstream_conn_id)
        if conn is None:
            return {}
        values: dict[str, Any] = {}
        if conn.host:
            url = conn.host if "://" in conn.host else f"{conn.schema or 'https'}://{conn.host}"
            if conn.port and url.count(":") < 2:
                url = f"{url.rstrip('/')}:{conn.port}"
            values["upstream_url"] = url
        if conn.password:
            values["upstream_token"] = conn.password
        return values

    def get_conn(self):
        from mirror_core.upstream import Upstream

        return Upstream(mirror_settings(upstream_conn_id=self.upstream_conn_id))


def _config_yaml() -> str | None:
    try:
        value = Variable.get(CONFIG_VARIABLE, default=None)
    except AirflowRuntimeError:
        return None
    return value if value and str(value).strip() else None


def mirror_settings(s3_conn_id: str = S3_CONN_ID, upstream_conn_id: str = UPSTREAM_CONN_ID) -> Settings:
    """mirror_core Settings from the connections, the environment and the config Variable/file."""
    overrides = {**MirrorS3Hook(s3_conn_id).settings_overrides(),
                 **UpstreamHook(upstream_conn_id).settings_overrides()}
    text = _config_yaml()
    if text is None:
        return load_settings(**overrides)
    fd, path = tempfile.mkstemp(prefix="hubmirror-config-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(str(text))
        try:
            return load_settings(path, **overrides)
        except ConfigError as exc:
            raise ConfigError(f"Airflow Variable {CONFIG_VARIABLE!r}: {exc}") from None
    finally:
        os.unlink(path)
