"""`hubmirror up`: the whole mirror on one machine, every server on 127.0.0.1, no Docker.

SeaweedFS S3 (embedded), optionally the offline fake hub (`--demo`), Airflow as its four components
(api-server, scheduler, dag-processor, triggerer; SQLite, LocalExecutor, SimpleAuthManager with a
persisted admin password) and `hubmirror serve`. serve runs with least privilege: the read-only S3 identity,
an Airflow user of role `user` (enough to trigger the sync DAGs) and neither the upstream token nor the
config file (see `serve_environment`). Airflow runs as subprocesses so that no hubmirror module
imports it. The scheduler and triggerer get `--skip-serve-logs` because their log servers would bind
every interface; the api-server reads task logs from disk instead.

`AirflowStack` is also what the end-to-end tests use to start and stop Airflow.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import SecretStr

from hubmirror.embedded_s3 import EmbeddedS3, free_port, start_embedded_s3, write_private
from mirror_core.errors import ConfigError, StackError
from mirror_core.settings import (
    DEFAULT_UPSTREAM,
    S3Settings,
    Settings,
)
from mirror_core.store import Store

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT_DAGS = ROOT / "dags"
INSTALLED_DAGS = "share/hubmirror/dags"  # where the wheel puts a copy of dags/ (pyproject: data-files)
ADMIN_USER = "admin"
# SimpleAuthManager's roles are global (viewer < user < op < admin): `user` is the least that may trigger DAG runs;
# it cannot read connections, variables, pools or config (op), so not the S3 write keys or the upstream token.
SERVE_USER, SERVE_ROLE = "hubmirror-serve", "user"
# What serve must not inherit from the environment of `hubmirror up`: Airflow's settings and connections, the
# upstream token (any spelling), the S3 writer's keys and the config file (which may hold both).
SERVE_DROPPED_ENV = ("AIRFLOW", "HUBMIRROR_UPSTREAM_", "HUBMIRROR_S3_", "HUBMIRROR_CONFIG", "HF_TOKEN",
                     "HUGGING_FACE_HUB_TOKEN")
S3_PORT = 8333  # SeaweedFS's own default: the endpoint in .hubmirror/env stays valid across restarts when it is free
COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server", "--host", "127.0.0.1", "--port", "{port}"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


def dags_folder() -> Path:
    """The checkout's dags/ (source tree, editable install), else the copy the installed wheel carries."""
    if CHECKOUT_DAGS.is_dir():
        return CHECKOUT_DAGS
    try:
        files = distribution("hubmirror").files or []
    except PackageNotFoundError:
        files = []
    for file in files:
        if file.as_posix().endswith(f"{INSTALLED_DAGS}/hubmirror_common.py"):
            return Path(str(file.locate())).resolve().parent
    raise StackError(f"no DAGs: neither {CHECKOUT_DAGS} (a source checkout) nor {INSTALLED_DAGS} of the installed "
                     "hubmirror package; reinstall it (pip install 'hubmirror[local]')")


def airflow_binary() -> str:
    beside = Path(sys.executable).parent / "airflow"
    return str(beside) if beside.exists() else "airflow"


def _port(preferred: int | None, default: int) -> int:
    """`preferred` if given, else `default` if free on 127.0.0.1, else any free port."""
    if preferred:
        return preferred
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", default))
            return default
        except OSError:
            return free_port()


@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        """Raise StackError with the end of its log if the process has exited."""
        if not self.alive():
            raise StackError(f"{self.name} exited (code {self.process.returncode}); "
                             f"see {self.log_path}:\n{self.tail()}")


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    """Start a child in its own session (Ctrl-C reaches only us; we stop it in order), output to a log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=str(ROOT))
    return Proc(name, process, log_path)


def stop_procs(procs: list[Proc], timeout: float = 30) -> None:
    """SIGTERM each (in reverse start order), wait, then SIGKILL what is left of each process group."""
    for proc in reversed(procs):
        if proc.alive():
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in reversed(procs):
        try:
            proc.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.process.wait(5)
        try:  # the group was created by us for this child: take any worker it left behind with it
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _load_or_create(path: Path, make: Any) -> dict[str, str]:
    if path.exists():
        return json.loads(path.read_text())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(value, indent=2))
    return value


def _ensure_passwords(path: Path) -> dict[str, str]:
    """The SimpleAuthManager passwords file with a password for the admin and for serve's user (kept across runs)."""
    passwords = _load_or_create(path, dict)
    wanted = {ADMIN_USER: os.environ.get("HUBMIRROR_ADMIN_PASSWORD") or secrets.token_urlsafe(12),
              SERVE_USER: secrets.token_urlsafe(24)}
    if not wanted.keys() <= passwords.keys():
        passwords = {**wanted, **passwords}
        write_private(path, json.dumps(passwords, indent=2))
    return passwords


def serve_environment(base: Mapping[str, str], s3: EmbeddedS3, serve_url: str, airflow_url: str,
                      airflow_password: str) -> dict[str, str]:
    """serve's environment: `base` without what serve must not hold (SERVE_DROPPED_ENV), plus the read-only S3
    identity (which also signs its presigned URLs) and the Airflow user that may only trigger DAG runs."""
    env = {k: v for k, v in base.items() if not k.startswith(SERVE_DROPPED_ENV)}
    env.update(s3.env(read_only=True))
    env.update({"HUBMIRROR_SERVE_PUBLIC_URL": serve_url,
                "HUBMIRROR_SERVE_AIRFLOW_URL": airflow_url,
                "HUBMIRROR_SERVE_AIRFLOW_USERNAME": SERVE_USER,
                "HUBMIRROR_SERVE_AIRFLOW_PASSWORD": airflow_password})
    return env


@dataclass
class AirflowStack:
    """Airflow's four components on 127.0.0.1 with an isolated AIRFLOW_HOME (SQLite, SimpleAuthManager)."""

    home: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    paused_at_creation: bool = False
    parallelism: int = 4
    procs: list[Proc] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    @property
    def admin_password(self) -> str:
        return json.loads(self.passwords_file.read_text())[ADMIN_USER]

    @property
    def serve_password(self) -> str:
        return json.loads(self.passwords_file.read_text())[SERVE_USER]

    def env(self) -> dict[str, str]:
        keys = _load_or_create(self.home / "hubmirror-secrets.json", lambda: {
            "jwt_secret": secrets.token_urlsafe(32),
            "api_secret_key": secrets.token_urlsafe(32),
            "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        })
        _ensure_passwords(self.passwords_file)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(self.paused_at_creation),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin,{SERVE_USER}:{SERVE_ROLE}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        })
        env.update(self.extra_env)
        return env

    def _airflow(self, *args: str, timeout: float = 180) -> None:
        log_dir = self.home / "logs" / "hubmirror"
        proc = spawn(f"airflow-{args[0]}", [airflow_binary(), *args], self.env(), log_dir)
        try:
            code = proc.process.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_procs([proc])
            raise StackError(f"`airflow {' '.join(args)}` took over {timeout:.0f}s; see {proc.log_path}") from None
        if code != 0:
            raise StackError(f"`airflow {' '.join(args)}` failed (exit {code}); see {proc.log_path}:\n{proc.tail()}")

    def start(self, timeout: float = 240) -> None:
        """Migrate the DB, start the four components and wait until all are healthy.

        No `airflow pools set` here: the plugin's listener creates `hf_upstream` when the scheduler's Job is built,
        before its loop queues any task (one creator for up, compose and Helm; a size changed in the UI is kept).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        self._airflow("db", "migrate")
        env, log_dir = self.env(), self.home / "logs" / "hubmirror"
        for name, argv in COMPONENTS.items():
            args = [a.format(port=self.port) for a in argv]
            self.procs.append(spawn(name, [airflow_binary(), *args], env, log_dir))
        try:
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            for proc in self.procs:
                proc.check_alive()
            try:
                health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
                states = {k: (v or {}).get("status") for k, v in health.items()}
                if all(s == "healthy" for s in states.values()) and len(states) >= 4:
                    return
                last = str(states)
            except (httpx.HTTPError, ValueError) as exc:
                last = str(exc)
            time.sleep(1)
        raise StackError(f"Airflow at {self.url} not healthy within {timeout:.0f}s ({last}); "
                         f"logs in {self.home / 'logs' / 'hubmirror'}")

    def token(self) -> str:
        r = httpx.post(f"{self.url}/auth/token", json={"username": ADMIN_USER, "password": self.admin_password},
                       timeout=30)
        r.raise_for_status()
        return r.json()["access_token"]

    def stop(self) -> None:
        stop_procs(self.procs)


def _fakehub_modules() -> tuple[Any, Any]:
    """hubmirror.demohub (corpus, server), imported only for --demo: building its repos needs the `local` extra."""
    try:
        from hubmirror.demohub import corpus, server
    except ModuleNotFoundError as exc:
        raise ConfigError(f"--demo needs the Python package {exc.name!r}: pip install 'hubmirror[local]'") from exc
    return corpus, server


def _demo_config(data_dir: Path) -> Path:
    """A settings file for --demo: a few fakehub repos, and the fakehub's CDN host allowed for redirects."""
    corpus, _ = _fakehub_modules()

    repos = [{"id": corpus.SMALL_MODEL, "type": "model"}, {"id": corpus.DATASET, "type": "dataset"}]
    # `hubmirror trending` (and the hubmirror_trending DAG) then picks the fake hub's trending repos.
    trending = {"models": {"top": 8, "tags": ["hubmirror-trending"], "max_total_size": 100_000_000},
                "datasets": {"top": 2}}
    config = {"selection": {"repos": repos, "trending": trending},
              "transfer": {"allowed_redirect_hosts": ["127.0.0.1", "localhost"]}}
    path = data_dir / "demo-config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_env_file(path: Path, values: Mapping[str, str]) -> Path:
    """A 0600 shell file exporting `values`: `source` it and the CLI works against the running stack."""
    lines = ["# written by `hubmirror up` (new S3 keys on every start); source it, then: hubmirror status|sync|gc",
             *(f"export {key}={shlex.quote(value)}" for key, value in sorted(values.items()))]
    write_private(path, "\n".join(lines) + "\n")
    return path


def shown(path: Path | str) -> str:
    """`path` as a user types it here: relative to the working directory when it lies below it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def beside_python(command: str) -> str:
    """How to run `command` installed beside this interpreter (`.venv/bin/hf` after `make up`)."""
    path = Path(sys.executable).parent / command
    return shown(path) if path.exists() else command


def wait_http(url: str, proc: Proc, timeout: float) -> None:
    """Wait until `url` answers below 500; StackError if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        try:
            if httpx.get(url, timeout=3).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise StackError(f"{proc.name} did not answer {url} within {timeout:.0f}s; see {proc.log_path}")


def run_up(args: Any, settings: Settings) -> int:
    """Start everything, print the URLs and the admin password, block until Ctrl-C/SIGTERM, stop all."""
    from rich.console import Console

    console = Console(soft_wrap=True)
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    demo, upstream = args.demo, args.upstream
    if demo and upstream:
        raise ConfigError("--demo starts its own upstream (the fake hub): drop --upstream, or drop --demo")
    config_file = args.config or os.environ.get("HUBMIRROR_CONFIG")

    stopping = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    s3: EmbeddedS3 | None = None
    fakehub: Any = None
    airflow: AirflowStack | None = None
    serve_procs: list[Proc] = []
    try:
        console.print(f"[bold]hubmirror up[/bold]: state in {data_dir}")
        s3 = start_embedded_s3(data_dir / "s3", bucket=settings.s3_bucket, s3_port=_port(args.s3_port, S3_PORT))
        env = s3.env()
        token = settings.token
        if demo:
            fakehub = _fakehub_modules()[1].start_fakehub(data_dir / "fakehub")
            upstream, token = fakehub.url, fakehub.service_token
            config_file = config_file or str(_demo_config(data_dir))
        upstream = (upstream or settings.upstream_url or DEFAULT_UPSTREAM).rstrip("/")
        env["HUBMIRROR_UPSTREAM_URL"] = upstream
        if token:
            env["HUBMIRROR_UPSTREAM_TOKEN"] = token
        if config_file:
            env["HUBMIRROR_CONFIG"] = str(Path(config_file).resolve())
        Store(S3Settings(endpoint=s3.endpoint, access_key=s3.access_key, secret_key=SecretStr(s3.secret_key),
                         bucket=settings.s3_bucket, region="us-east-1")).ensure_bucket()
        # the writer's keys (the CLI writes like the DAGs do); the demo's fake token, never a real one (already set)
        env_file = write_env_file(data_dir / "env", {k: v for k, v in env.items()
                                                     if demo or k != "HUBMIRROR_UPSTREAM_TOKEN"})

        af_port = _port(args.airflow_port, 8080)
        serve_port = _port(args.serve_port, 8000 if af_port != 8000 else 8001)
        serve_url = f"http://127.0.0.1:{serve_port}"
        connections = {
            "AIRFLOW_CONN_HUBMIRROR_S3": json.dumps({
                "conn_type": "aws", "login": s3.access_key, "password": s3.secret_key,
                "extra": {"endpoint_url": s3.endpoint, "region_name": "us-east-1", "bucket": settings.s3_bucket}}),
            "AIRFLOW_CONN_HUBMIRROR_UPSTREAM": json.dumps(
                {"conn_type": "generic", "host": upstream, **({"password": token} if token else {})}),
        }
        airflow = AirflowStack(data_dir / "airflow", af_port,
                               extra_env={**env, **connections, "HUBMIRROR_SERVE_URL": serve_url})
        console.print("starting Airflow (db migrate, api-server, scheduler, dag-processor, triggerer)...")
        airflow.start()
        serve_env = serve_environment(os.environ, s3, serve_url, airflow.url, airflow.serve_password)
        serve = spawn("serve", [sys.executable, "-m", "hubmirror", "serve", "--host", "127.0.0.1",
                                "--port", str(serve_port)], serve_env, data_dir / "logs")
        serve_procs.append(serve)
        wait_http(f"{serve_url}/healthz", serve, 60)
        _print_urls(console, airflow, serve_url, s3, upstream, demo, data_dir, env_file, fakehub)
        while not stopping.is_set():
            for proc in [*airflow.procs, *serve_procs]:
                if not proc.alive():
                    console.print(f"[red]{proc.name} exited (code {proc.process.returncode}); see {proc.log_path}")
                    stopping.set()
            stopping.wait(2)
        return 0
    finally:
        console.print("stopping...")
        stop_procs(serve_procs)
        if airflow is not None:
            airflow.stop()
        if fakehub is not None:
            fakehub.stop()
        if s3 is not None:
            s3.stop()
        console.print("stopped.")


def _print_urls(console: Any, airflow: AirflowStack, serve_url: str, s3: EmbeddedS3, upstream: str, demo: bool,
                data_dir: Path, env_file: Path, fakehub: Any) -> None:
    example = "hf-internal-testing/tiny-random-gpt2"
    if demo:
        example = _fakehub_modules()[0].SMALL_MODEL
    airflow_logs = airflow.home / "logs"
    components = "{" + ",".join(COMPONENTS) + "}"
    hub_log = f"\n  fake hub           {shown(fakehub.log_path)}" if fakehub is not None else ""
    console.print(f"""
[bold green]hubmirror is up[/bold green] (Ctrl-C stops everything)
  Airflow UI / API   {airflow.url}    user [bold]{ADMIN_USER}[/bold]  password [bold]{airflow.admin_password}[/bold]
  Mirror page        {airflow.url}/plugin/hubmirror  (Browse > Mirror)
  Mirror (serve)     {serve_url}    HF_ENDPOINT for clients
  S3 (SeaweedFS)     {s3.endpoint}  bucket {s3.bucket}
  Upstream           {upstream}{'  (offline fake hub)' if demo else ''}

Logs
  serve              {shown(data_dir / 'logs' / 'serve.log')}
  Airflow            {shown(airflow_logs / 'hubmirror')}/{components}.log
  Airflow tasks      {shown(airflow_logs)}/dag_id=<dag>/run_id=<run>/task_id=<task>/ (or a task's Logs tab in the UI)
  S3                 {shown(s3.log_path)}{hub_log}

Try it:
  open {airflow.url}/dags/hubmirror_sync_repo, press Trigger, repo_id = {example}
  (the demo selection is synced by hubmirror_sync: its first run starts by itself)
  HF_ENDPOINT={serve_url} {beside_python('hf')} download {example}
  source {shown(env_file)}; {beside_python('hubmirror')} status    (also sync, verify, gc against this stack)
""", highlight=False)
