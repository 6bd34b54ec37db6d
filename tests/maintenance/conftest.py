"""Fixtures for the maintenance integration tests: a bucket mirrored from the fake hub by the real sync."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import pytest

from hubmirror.demohub.corpus import TRENDING_DATASETS
from mirror_core.layout import RepoRef
from mirror_core.settings import Settings
from tests.conftest import make_settings

# A small repo no other test area inspects the refs of; each test adds its own uniquely named branch
# (never touching `main`), so tests sharing the session's fake hub cannot see each other's commits.
PLAYGROUND = RepoRef.parse(TRENDING_DATASETS[-1], "dataset")


def upstream_settings(s3_server, bucket: str, fakehub, **overrides) -> Settings:
    """Settings on `bucket` whose upstream is the fake hub (with its service token)."""
    transfer = {"allowed_redirect_hosts": ["127.0.0.1"], "max_retries": 1, "backoff_base": 0.1}
    return make_settings(s3_server, bucket, upstream_url=fakehub.url, upstream_token=fakehub.tokens["service"],
                         transfer=transfer, **overrides)


@pytest.fixture
def mirror_settings(s3_server, bucket_settings: Settings, fakehub) -> Settings:
    """A fresh bucket whose upstream is the fake hub."""
    fakehub.reset()
    yield upstream_settings(s3_server, bucket_settings.s3_bucket, fakehub)
    fakehub.reset()


@dataclass
class Branch:
    """A branch of PLAYGROUND made for one test, with the bodies each commit added."""

    fakehub: object
    name: str
    shas: list[str]  # oldest first

    def commit(self, files: dict[str, bytes], *, lfs: bool | None = None) -> str:
        sha = self.fakehub.commit(PLAYGROUND.singular_type, PLAYGROUND.repo_id, files, branch=self.name,
                                  message=f"maintenance test commit {len(self.shas) + 1}", lfs=lfs,
                                  parent=self.shas[-1] if self.shas else "main")
        self.shas.append(sha)
        return sha


@pytest.fixture
def branch(fakehub) -> Branch:
    return Branch(fakehub, f"maint-{uuid.uuid4().hex[:10]}", [])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
