"""Who is asking, and may they read a repo.

Mirror tokens (inline or from a YAML file) map to an identity with grants. Public repos are readable
anonymously when `anonymous` is on; repos that were gated or private upstream ("restricted") only by
identities whose grants match. Tokens are compared by their sha256 so the table holds no plain secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from mirror_core.layout import RepoRef
from serve.config import TokenGrant
from serve.errors import GatedRepo, InvalidCredentials, RepoNotFound

audit = logging.getLogger("hubmirror.serve.audit")


@dataclass(frozen=True)
class Identity:
    name: str | None = None  # None: anonymous
    orgs: tuple[str, ...] = ()
    grants: tuple[str, ...] = ()
    admin: bool = False
    display: str = field(default="", compare=False)

    @property
    def authenticated(self) -> bool:
        return self.name is not None

    def granted(self, repo: RepoRef) -> bool:
        return self.admin or matches(repo, self.grants)


ANONYMOUS = Identity()


def matches(repo: RepoRef, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether a repo matches one of the patterns (`org/*`, `datasets:org/x`, `dataset:org/*`, `*`)."""
    names = (repo.repo_id, f"{repo.type}:{repo.repo_id}", f"{repo.singular_type}:{repo.repo_id}")
    return any(fnmatchcase(n, p) for p in patterns for n in names)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Auth:
    def __init__(self, tokens: list[TokenGrant], anonymous: bool) -> None:
        self.anonymous = anonymous
        self._by_digest: dict[bytes, Identity] = {
            _digest(t.token.get_secret_value()): Identity(t.name, tuple(t.orgs), tuple(t.grants), t.admin, t.name)
            for t in tokens
        }

    def identify(self, authorization: str | None) -> Identity:
        """The caller's identity; a token we do not know is refused, as the Hub does."""
        if not authorization:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidCredentials()
        digest = _digest(token.strip())
        for known, identity in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return identity
        raise InvalidCredentials()

    def check_repo(self, identity: Identity, repo: RepoRef, private: bool, gated: Any, *, body: bool) -> None:
        """Raise the HF error a caller without access gets; `body` = the request reads file contents."""
        if not identity.authenticated and not self.anonymous:
            raise RepoNotFound(repo.repo_id, authenticated=False)
        restricted = private or gated not in (None, False)
        if not restricted:
            return
        if identity.granted(repo):
            audit.info("restricted access granted: identity=%s repo=%s", identity.name, repo)
            return
        if private:
            raise RepoNotFound(repo.repo_id, authenticated=identity.authenticated)
        if body:
            raise GatedRepo(repo.repo_id, authenticated=identity.authenticated)


def whoami(identity: Identity) -> dict[str, Any]:
    return {
        "type": "user",
        "id": hashlib.sha1(f"hubmirror-user:{identity.name}".encode()).hexdigest()[:24],
        "name": identity.name,
        "fullname": identity.display or identity.name,
        "isPro": False,
        "orgs": [{"name": o, "type": "org"} for o in identity.orgs],
        "auth": {"type": "access_token", "accessToken": {"displayName": identity.name, "role": "read"}},
    }
