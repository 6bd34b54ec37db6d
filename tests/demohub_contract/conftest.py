"""Fixtures of the fake hub contract tests: the real huggingface_hub client pointed at the session's fake hub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download


@pytest.fixture
def download(fakehub, tmp_path) -> Callable[..., Path]:
    """`hf_hub_download` from the fake hub into this test's own cache; anonymous unless `token=` is given."""

    def fetch(repo_id: str, filename: str, *, token: str | bool = False, **kwargs) -> Path:
        return Path(
            hf_hub_download(repo_id, filename, endpoint=fakehub.url, cache_dir=tmp_path, token=token, **kwargs)
        )

    return fetch
