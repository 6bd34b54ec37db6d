"""`hubmirror serve`: check the settings once, then run the app under uvicorn."""

from __future__ import annotations

import os

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
    uvicorn.run("serve.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, env_file=None, access_log=settings.access_log)
    return 0
