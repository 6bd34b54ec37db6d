"""Run the fake hub (hub + CDN origins in one process) and control it from tests.

`start_fakehub()` starts `python -m hubmirror.demohub` as a subprocess, waits until the corpus is built
and both origins listen, and returns a `FakeHubHandle` that talks to the /_fakehub/ admin endpoints.
Ports default to 0: the child binds them itself and reports them back, so no port race.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hubmirror.demohub.app import DEFAULT_CONFIG, DEFAULT_SERVICE_TOKEN, NO_ACCESS_TOKEN
from hubmirror.demohub.corpus import DEFAULT_LARGE_SIZE

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakeHubHandle:
    """A running fake hub: its origins, PID, tokens, and control methods."""

    url: str
    cdn_url: str
    process: subprocess.Popen = field(repr=False)
    service_token: str = DEFAULT_SERVICE_TOKEN
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def tokens(self) -> dict[str, str]:
        """`service` reads everything (gated, private); `no_access` is valid but can't read those."""
        return {"service": self.service_token, "no_access": NO_ACCESS_TOKEN}

    def _call(self, method: str, action: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}/_fakehub/{action}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"fakehub admin {action} failed: {response.status_code} {response.text}")
        return response.json()

    def reset(self) -> None:
        """Clear faults, counters and the request log; restore the default config."""
        self._call("POST", "reset")

    def set_faults(self, *rules: dict) -> list[dict]:
        """Replace all fault rules; see faults.Fault for the fields (action, kind, path, count, ...)."""
        return self._call("PUT", "faults", json=list(rules))

    def add_fault(self, action: str, **rule) -> list[dict]:
        return self._call("POST", "faults", json={"action": action, **rule})

    def faults(self) -> list[dict]:
        """Current rules with how often each matched (`seen`) and fired (`fired`)."""
        return self._call("GET", "faults")

    def configure(self, **changes) -> dict:
        """Tune the server: cdn_ttl (s; negative = already expired), page sizes, hostile page Links."""
        return self._call("POST", "config", json=changes)

    def counters(self) -> dict[str, dict[str, int]]:
        """{"api"|"resolve"|"cdn"|"other": {"requests": n, "bytes": body bytes sent}} since the last reset."""
        return self._call("GET", "counters")

    def requests(self) -> list[dict]:
        """Every request since the last reset: kind, method, raw path, query, status, bytes, range, fault."""
        return self._call("GET", "requests")

    def commit(
        self,
        repo_type: str,
        repo_id: str,
        files: dict[str, bytes | None],
        branch: str = "main",
        message: str = "update",
        *,
        lfs: bool | None = None,
        parent: str = "main",
    ) -> str:
        """New commit on `branch` (created from `parent` if new); None deletes. Returns the commit sha."""
        payload = {p: None if b is None else base64.b64encode(b).decode() for p, b in files.items()}
        return self._call(
            "POST",
            "commit",
            json={
                "repo_type": repo_type,
                "repo_id": repo_id,
                "files": payload,
                "branch": branch,
                "message": message,
                "lfs": lfs,
                "parent": parent,
            },
        )["sha"]

    def create_repo(
        self,
        repo_type: str,
        repo_id: str,
        files: dict[str, bytes],
        *,
        gated: bool | str = False,
        private: bool = False,
        lfs: bool | None = None,
        meta: dict | None = None,
    ) -> str:
        """A new repo with one commit on main (a test's own repo: no other test sees its changes).

        `meta` may set likes, downloads, trendingScore, tags, pipeline_tag, library_name, card."""
        payload = {p: base64.b64encode(b).decode() for p, b in files.items()}
        return self._call(
            "POST",
            "create-repo",
            json={
                "repo_type": repo_type,
                "repo_id": repo_id,
                "files": payload,
                "gated": gated,
                "private": private,
                "lfs": lfs,
                "meta": meta,
            },
        )["sha"]

    def set_access(self, repo_type: str, repo_id: str, **access: bool | str) -> dict:
        """Flip gating at runtime: gated (False/"auto"/"manual"), private, service_denied (the token loses access)."""
        return self._call("POST", "access", json={"repo_type": repo_type, "repo_id": repo_id, **access})

    def forge_lfs(self, repo_type: str, repo_id: str, path: str, sha256: str, size: int,
                  served: bytes | None, branch: str = "main") -> str:
        """Hostile: commit `path` listed as LFS `sha256`/`size` (e.g. another repo's), served as `served` or 404."""
        return self._call("POST", "forge-lfs", json={
            "repo_type": repo_type, "repo_id": repo_id, "path": path, "sha256": sha256, "size": size,
            "served": None if served is None else base64.b64encode(served).decode(), "branch": branch})["sha"]

    def set_meta(self, repo_type: str, repo_id: str, **meta: object) -> dict:
        """Change counters/card fields (likes, downloads, trendingScore, tags, ...) without a commit, like the Hub."""
        return self._call("POST", "meta", json={"repo_type": repo_type, "repo_id": repo_id, "meta": meta})

    def create_tag(self, repo_type: str, repo_id: str, tag: str, revision: str = "main") -> str:
        return self._call(
            "POST", "tag", json={"repo_type": repo_type, "repo_id": repo_id, "tag": tag, "revision": revision}
        )["sha"]

    def file_record(self, repo_type: str, repo_id: str, path: str, revision: str = "main") -> dict:
        """The corpus's own record of a file: size, sha256, oid (git blob id), lfs, commit."""
        return self._call(
            "GET",
            "file",
            params={"repo_type": repo_type, "repo_id": repo_id, "path": path, "revision": revision},
        )

    def repo_record(self, repo_type: str, repo_id: str) -> dict:
        """Refs and head files of a repo, as the corpus knows them."""
        return self._call("GET", "repo", params={"repo_type": repo_type, "repo_id": repo_id})

    def stop(self) -> None:
        """Stop the subprocess by its PID (TERM, then KILL after 10 s) and remove its log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


def start_fakehub(
    data_dir: Path,
    *,
    large_size: int = DEFAULT_LARGE_SIZE,
    token: str = DEFAULT_SERVICE_TOKEN,
    port: int = 0,
    cdn_port: int = 0,
    timeout: float = 180,
) -> FakeHubHandle:
    """Start the fake hub subprocess on 127.0.0.1; returns once both origins answer."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    ready = data_dir / f"ready-{os.getpid()}-{time.monotonic_ns()}.json"
    log_path = ready.with_suffix(".log")
    cmd = [
        sys.executable,
        "-m",
        "hubmirror.demohub",
        "--port",
        str(port),
        "--cdn-port",
        str(cdn_port),
        "--data",
        str(data_dir),
        "--large-size",
        str(large_size),
        "--token",
        token,
        "--ready-file",
        str(ready),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        while not ready.exists():
            if process.poll() is not None:
                raise RuntimeError(
                    f"fakehub exited with {process.returncode}: {log_path.read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"fakehub not ready after {timeout}s: {log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        ports = json.loads(ready.read_text())
        ready.unlink()
    except BaseException:
        process.kill()
        process.wait(timeout=10)
        raise
    return FakeHubHandle(
        url=f"http://127.0.0.1:{ports['port']}",
        cdn_url=f"http://127.0.0.1:{ports['cdn_port']}",
        process=process,
        service_token=token,
        log_path=log_path,
    )


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> None:
    """Child entry point: build the corpus, bind both origins, report ports, serve until TERM."""
    import uvicorn

    from hubmirror.demohub.app import Routes
    from hubmirror.demohub.corpus import build_corpus
    from hubmirror.demohub.faults import Traffic, instrument

    parser = argparse.ArgumentParser(prog="python -m hubmirror.demohub", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="hub origin port (0 = any free port)")
    parser.add_argument("--cdn-port", type=int, default=0, help="CDN origin port (0 = any free port)")
    parser.add_argument("--data", type=Path, required=True, help="directory for generated large bodies")
    parser.add_argument(
        "--large-size", type=int, default=DEFAULT_LARGE_SIZE, help="bytes of LARGE_MODEL's file"
    )
    parser.add_argument("--token", default=DEFAULT_SERVICE_TOKEN, help="the full-access service token")
    parser.add_argument("--ready-file", type=Path, help="write {port, cdn_port} here once listening")
    args = parser.parse_args(argv)

    corpus = build_corpus(args.data, args.large_size)
    hub_sock, cdn_sock = _bind(args.port), _bind(args.cdn_port)
    cdn_url = f"http://127.0.0.1:{cdn_sock.getsockname()[1]}"
    traffic = Traffic()
    traffic.reset(DEFAULT_CONFIG)
    routes = Routes(corpus, traffic, args.token, cdn_url)

    def classify_hub(path: str) -> str | None:
        if path.startswith("/_fakehub/"):
            return None
        if path.startswith("/api/"):
            return "api"
        return "resolve" if "/resolve/" in path else "other"

    hub = instrument(routes.hub, traffic, classify_hub)
    cdn = instrument(routes.cdn, traffic, lambda path: "cdn")
    servers = [
        uvicorn.Server(
            uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, timeout_keep_alive=30)
        )
        for app in (hub, cdn)
    ]

    async def serve() -> None:
        pairs = zip(servers, (hub_sock, cdn_sock), strict=True)
        tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in pairs]
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.02)
        if args.ready_file:
            tmp = args.ready_file.with_suffix(".tmp")
            tmp.write_text(
                json.dumps(
                    {
                        "port": hub_sock.getsockname()[1],
                        "cdn_port": cdn_sock.getsockname()[1],
                        "pid": os.getpid(),
                    }
                )
            )
            os.replace(tmp, args.ready_file)
        print(f"fakehub: hub {hub_sock.getsockname()} cdn {cdn_url} repos={len(corpus.repos)}", flush=True)
        await asyncio.gather(*tasks)

    asyncio.run(serve())
