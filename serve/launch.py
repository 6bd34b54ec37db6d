"""`hubmirror serve`: check the settings once, then run the app under uvicorn."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from serve.config import load_serve_settings


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
    shared = workers > 1 or bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    with multiprocess_metrics() if shared else contextlib.nullcontext():
        uvicorn.run("serve.app:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, env_file=None, access_log=False)  # serve.access_log replaces uvicorn's
    return 0


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
