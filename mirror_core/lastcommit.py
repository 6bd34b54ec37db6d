"""Per-path `lastCommit` for tree/paths-info `expand=true`: asked upstream once, then inherited.

A sync asks the upstream's expanded paths-info only for the paths that are new or whose git oid changed
since the manifest the same ref published before; every other path keeps the lastCommit recorded there
(unchanged content, unchanged last commit). A directory's oid changes whenever anything below it does, so
directories follow the same rule. A first sync of a repo asks for every path.
"""

from __future__ import annotations

from pydantic import ValidationError

from mirror_core.layout import RepoRef
from mirror_core.manifest import CommitManifest, DirEntry, FileEntry, LastCommit
from mirror_core.upstream import Upstream, UpstreamDir, UpstreamFile


def inherited(previous: CommitManifest | None) -> dict[str, tuple[str, LastCommit]]:
    """path -> (oid, lastCommit) recorded by a published manifest."""
    if previous is None:
        return {}
    entries: list[FileEntry | DirEntry] = [*previous.files, *previous.directories]
    return {e.path: (e.oid, e.last_commit) for e in entries if e.last_commit is not None}


def last_commits(upstream: Upstream, repo: RepoRef, sha: str, files: list[UpstreamFile], dirs: list[UpstreamDir],
                 previous: CommitManifest | None) -> dict[str, LastCommit]:
    """path -> LastCommit for every listed path the upstream reports one for."""
    known = inherited(previous)
    out: dict[str, LastCommit] = {}
    ask: list[str] = []
    listed: list[UpstreamDir | UpstreamFile] = [*dirs, *files]
    for entry in listed:
        kept = known.get(entry.path)
        if kept is not None and kept[0] == entry.oid:
            out[entry.path] = kept[1]
        else:
            ask.append(entry.path)
    for path, raw in upstream.last_commits(repo, sha, ask).items():
        try:
            out[path] = LastCommit.model_validate(raw)
        except ValidationError:
            continue  # an entry the upstream could not date: serve falls back to the commit itself
    return out
