"""`hubmirror serve`: check the settings once, then run the app under uvicorn."""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from serve.config import load_serve_settings

APP = "serve.app:create_app"


def run_serve(*, host: str, port: int, workers: int, log_level: str, mode: str | None = None,
              config: str | None = None) -> int:
    """Fail at once, with the setting named, on bad settings; else serve until stopped.

    Workers are separate processes that build their settings from the environment, so the command
    line's choices go there first. Checking here spares every worker from crashing on the same typo.
    """
    if mode:
        os.environ["HUBMIRROR_SERVE_MODE"] = mode
    if config:
        os.environ["HUBMIRROR_CONFIG"] = config
    settings = load_serve_settings(config)
    settings.all_tokens()
    options: dict[str, Any] = dict(factory=True, host=host, port=port, workers=workers, log_level=log_level,
                                   env_file=None, access_log=False)  # serve.access_log replaces uvicorn's
    shared = workers > 1 or bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    with multiprocess_metrics() if shared else contextlib.nullcontext():
        if workers > 1 and hasattr(socket, "SO_REUSEPORT"):
            uv_config = uvicorn.Config(APP, **options)
            # Older uvicorn versions take the worker's entry point; newer ones build the Server in the worker.
            older = "target" in inspect.signature(Multiprocess).parameters
            extra = {"target": uvicorn.Server(uv_config).run} if older else {}
            Multiprocess(uv_config, sockets=[WorkerSocket.reserve(host, port)], **extra).run()
        else:
            uvicorn.run(APP, **options)
    return 0


class WorkerSocket(socket.socket):
    """The listening socket, re-made in each worker as a socket of its own bound with SO_REUSEPORT.

    uvicorn's workers share one listening socket, and the worker that wakes first accepts a whole
    burst of new connections: the bench saw all 32 keep-alive clients land on one of two workers.
    With one SO_REUSEPORT socket per worker the kernel spreads connections across workers evenly.
    The parent's socket only reserves the address (bound, never listening, so it gets no
    connections); multiprocessing pickles it into each worker, also one restarted later, as a new
    bind to the same address.
    """

    @classmethod
    def reserve(cls, host: str, port: int) -> WorkerSocket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = cls(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))  # fails here, in the launcher, if the port is taken
        return sock

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebind, (self.family, self.getsockname())


def _rebind(family: int, address: tuple[Any, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


@contextlib.contextmanager
def multiprocess_metrics() -> Iterator[Path]:
    """One PROMETHEUS_MULTIPROC_DIR for all workers, emptied first, so `/metrics` sums every worker.

    The workers inherit the variable (they start after it is set). Files an earlier run left behind
    would be added to this run's counts, so the directory is cleaned at start; one the operator chose
    is kept, one made here is removed at exit.
    """
    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="hubmirror-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    try:
        yield path
    finally:
        if not chosen:
            shutil.rmtree(path, ignore_errors=True)
