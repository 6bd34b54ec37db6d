"""Whether a repo is private or gated upstream, as refs.json records it (issue 10, fail closed).

The sync asks the upstream on every run (one repo info call), not only when a commit moved: a repo
that turns gated or private upstream must become restricted in the mirror at the next sync.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mirror_core.errors import (
    ConflictError,
    CorruptObjectError,
    GatedRepoError,
    UpstreamNotFoundError,
    UpstreamRevisionNotFoundError,
)
from mirror_core.layout import RepoRef, refs_key
from mirror_core.manifest import Refs
from mirror_core.store import Store
from mirror_core.upstream import Upstream

Access = tuple[bool | None, bool | str | None]  # (private, gated) as refs.json records them


def access_in(refs: Refs) -> Access:
    return refs.private, refs.gated


def access_of(info: dict[str, Any]) -> Access:
    """(private, gated) from upstream repo info; a missing or malformed field stays None (unknown: serve fails
    closed and treats the repo as restricted)."""
    private, gated = info.get("private"), info.get("gated")
    return (private if isinstance(private, bool) else None,
            gated if isinstance(gated, bool) or gated in ("auto", "manual") else None)


def upstream_info(upstream: Upstream, repo: RepoRef, current: Refs | None, publish: Callable[[Refs], None],
                  revision: str | None = None) -> dict[str, Any]:
    """The repo's info now (at `revision`, else its default branch): one call that tells its access
    (`access_of`), its popularity and the sha the revision names.

    If the upstream refuses the repo itself to the service token (gated: 401/403 GatedRepo; hidden or
    deleted: 404/401 RepoNotFound), the published refs.json is first rewritten (`publish`) as restricted,
    then the error propagates: a repo the mirror can no longer see must not stay public, and identities
    granted it keep reading what was mirrored. A refused token (401/403 without a repo error code), 429,
    5xx or network errors say nothing about the repo, so they leave the published access as it was.
    """
    try:
        return upstream.repo_info(repo, revision)
    except UpstreamRevisionNotFoundError:
        raise  # the repo is there: its access is unchanged
    except GatedRepoError:
        private, gated = access_in(current) if current is not None else (None, None)
        _restrict(current, (private or False, gated or "manual"), publish)
        raise
    except UpstreamNotFoundError:
        gated = current.gated if current is not None else None
        _restrict(current, (True, gated if gated is not None else False), publish)
        raise


def _restrict(current: Refs | None, access: Access, publish: Callable[[Refs], None]) -> None:
    if current is not None and access_in(current) != access:
        publish(with_access(current, access))


def with_access(refs: Refs, access: Access) -> Refs:
    return refs.model_copy(update={"private": access[0], "gated": access[1], "updated_at": datetime.now(UTC)})


def restrict_from_listing(store: Store, repo: RepoRef, private: bool, gated: bool | str) -> bool:
    """Mark a mirrored repo restricted because the upstream's listing says it is now private or gated, for repos
    the selection no longer syncs (a trending filter rejects gated repos, so no sync would notice the flip).

    Only ever restricts (loosening is left to a sync); a conditional put, so a concurrent sync's publish wins
    and this is retried at the next refresh. Returns whether refs.json was rewritten.
    """
    if not (private or gated):
        return False
    got = store.get_with_etag(refs_key(repo))
    if got is None:
        return False
    try:
        current = Refs.from_json(got[0], refs_key(repo))
    except CorruptObjectError:
        return False  # malformed: serve already fails closed on it, and verify reports it
    if current.restricted:
        return False
    access = (bool(private or current.private), gated or current.gated or False)
    try:
        store.put_if(refs_key(repo), with_access(current, access).to_json(), got[1])
    except ConflictError:
        return False
    return True
