"""The per-process state handlers share, and the one access path to a repo: find it in the bucket,
apply the access rules, or answer RepoNotFound (and ask Airflow to sync it, if configured)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from mirror_core.layout import RepoRef
from mirror_core.store import Store
from serve.auth import Auth, Identity
from serve.catalog_cache import CatalogCache
from serve.config import ServeSettings
from serve.errors import RepoNotFound
from serve.ondemand import AirflowTrigger
from serve.paths import Target
from serve.repo_state import RefsEntry, RepoState, repo_ref


@dataclass
class AppContext:
    settings: ServeSettings
    store: Store
    state: RepoState
    auth: Auth
    trigger: AirflowTrigger
    catalog: CatalogCache = field(init=False)
    requested: Counter[RepoRef] = field(default_factory=Counter)  # resolve requests per repo, this process

    def __post_init__(self) -> None:
        self.catalog = CatalogCache(self.state, self.settings.list_ttl)

    def base_url(self, request: Request) -> str:
        """Absolute origin for Links: the configured public URL, else what the client called."""
        if self.settings.public_url:
            return self.settings.public_url
        return f"{request.url.scheme}://{request.headers.get('host') or request.url.netloc}"


@dataclass
class OpenRepo:
    repo: RepoRef
    entry: RefsEntry
    target: Target
    private: bool
    gated: Any


async def restriction(ctx: AppContext, repo: RepoRef, entry: RefsEntry) -> tuple[bool, Any]:
    """(private, gated) as the sync published them in refs.json, never guessed from a manifest.

    refs.json is the one object a publish writes last and atomically, so a manifest that is missing, not
    yet written or negatively cached cannot make a repo look public. A field the sync did not record
    (refs.json from an older version) counts as private: unknown access is no access until the next sync.
    """
    refs = entry.refs
    assert refs is not None
    if refs.restricted is None:
        return True, "manual"
    return bool(refs.private), refs.gated or False


async def open_repo(ctx: AppContext, candidates: list[Target], identity: Identity, *,
                    body: Callable[[Target], bool]) -> OpenRepo:
    """The first candidate reading of the URL that names a mirrored repo the caller may see."""
    first: RepoRef | None = None
    for target in candidates:
        repo = repo_ref(target.repo_id, target.repo_type)
        if repo is None:
            continue
        first = first or repo
        entry = await ctx.state.refs_entry(repo)
        if entry.refs is None:
            continue
        private, gated = await restriction(ctx, repo, entry)
        ctx.auth.check_repo(identity, repo, private, gated, body=body(target))
        return OpenRepo(repo, entry, target, private, gated)
    if first is not None and (identity.authenticated or (ctx.settings.ondemand_anonymous and ctx.auth.anonymous)):
        ctx.trigger.request_sync(first)
    raise RepoNotFound(candidates[0].repo_id if candidates else "", authenticated=identity.authenticated)
