"""The search catalog: one SQLite file (with an FTS5 index) built from the bucket's manifests.

Serve answers search, filters and sorting from a local copy of this file instead of reading every
manifest per request; it is rebuilt after syncs and published like everything else: the snapshot
first (`state/catalog/<timestamp>.sqlite`), then `state/catalog/latest.json` pointing at it, so a
reader always finds a complete file. One row per repo describes the commit of its default branch
(`main`, else the first branch, else the first tag), overlaid with the repo's popularity snapshot
(mirror_core.popularity: downloads, likes, trendingScore, dates, tags, card), so serve can answer the Hub's
listing (`list_models` search, filters, sorts, expand) from this file alone.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mirror_core.history import list_jobs, read_jobs, repo_outcomes
from mirror_core.inventory import RepoListing, RepoObjects, list_blobs, list_repos, read_manifest, read_many, read_refs
from mirror_core.layout import CATALOG_LATEST, CATALOG_PREFIX, blob_key, catalog_key, repo_type
from mirror_core.manifest import CommitManifest, Refs, hf_date
from mirror_core.popularity import RepoMeta, read_meta
from mirror_core.settings import Settings
from mirror_core.store import Store

CATALOG_FORMAT = 2
README_MAX_BYTES = 512 * 1024
RUNS_READ = 500  # sync reports read per build for the per-repo last outcome (older ones are superseded anyway)
SNAPSHOTS_KEPT = 5  # older snapshots are deleted; a reader mid-download of one simply retries with latest
SORTS = {
    "updated": "coalesce(r.last_modified, r.mirrored_at) DESC, r.repo_id",
    "size": "r.total_size DESC, r.repo_id",
    "name": "r.repo_id COLLATE NOCASE, r.repo_type",
    "downloads": "r.downloads DESC, r.repo_id",
    "likes": "r.likes DESC, r.repo_id",
    "trending": "r.trending_score DESC, r.repo_id",
    "created": "r.created_at DESC, r.repo_id",
    "relevance": "bm25(repos_fts, 10.0, 5.0, 1.0), r.repo_id",
}
# The Hub's listing sorts (`sort=` after huggingface_hub's mapping) and the column each one orders by.
HUB_SORTS = {
    "trendingScore": "r.trending_score",
    "downloads": "r.downloads",
    "likes": "r.likes",
    "lastModified": "r.last_modified",
    "createdAt": "r.created_at",
}
_WORD_RE = re.compile(r"\w+", re.UNICODE)

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE repos (
    id INTEGER PRIMARY KEY,
    repo_type TEXT NOT NULL,
    repo_id TEXT NOT NULL,
    author TEXT,
    revision TEXT NOT NULL,
    sha TEXT NOT NULL,
    total_size INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    last_modified TEXT,
    mirrored_at TEXT NOT NULL,
    tags TEXT NOT NULL,
    library TEXT,
    pipeline TEXT,
    gated TEXT,
    private INTEGER NOT NULL,
    restricted INTEGER NOT NULL,
    downloads INTEGER NOT NULL,
    likes INTEGER NOT NULL,
    trending_score REAL NOT NULL,
    created_at TEXT NOT NULL,
    gated_value TEXT NOT NULL,
    info TEXT NOT NULL,
    siblings TEXT NOT NULL,
    popularity_at TEXT,
    upstream TEXT NOT NULL,
    sync_ok INTEGER,
    sync_error TEXT,
    sync_started TEXT,
    sync_ended TEXT,
    branches TEXT NOT NULL,
    tag_refs TEXT NOT NULL,
    UNIQUE (repo_type, repo_id)
);
CREATE INDEX repos_restricted ON repos (restricted, repo_type, repo_id);
CREATE INDEX repos_trending ON repos (repo_type, trending_score);
CREATE INDEX repos_downloads ON repos (repo_type, downloads);
CREATE INDEX repos_likes ON repos (repo_type, likes);
CREATE INDEX repos_modified ON repos (repo_type, last_modified);
CREATE INDEX repos_created ON repos (repo_type, created_at);
CREATE TABLE repo_tags (repo INTEGER NOT NULL REFERENCES repos(id), tag TEXT NOT NULL);
CREATE INDEX repo_tags_tag ON repo_tags (tag, repo);
CREATE VIRTUAL TABLE repos_fts USING fts5(repo_id, tags, readme, tokenize = 'unicode61');
CREATE VIRTUAL TABLE ids_fts USING fts5(repo_id, tokenize = 'trigram');
"""


@dataclass(frozen=True)
class CatalogRow:
    repo_type: str
    repo_id: str
    author: str | None
    revision: str
    sha: str
    total_size: int
    file_count: int
    last_modified: str | None  # the upstream's lastModified, as the HF API gives it
    mirrored_at: str  # when refs.json was last published
    tags: list[str]
    library: str | None
    pipeline: str | None
    gated: str | None  # None, "auto" or "manual"
    private: bool
    restricted: bool  # gated or private: serve shows it only to granted identities
    downloads: int
    likes: int
    trending_score: float
    created_at: str
    popularity_at: str | None  # when the popularity snapshot was taken; None: the repo has none yet
    upstream: str
    sync_ok: bool | None  # the newest sync run report's verdict for the repo (None: no report found)
    sync_error: str | None
    sync_started: str | None
    sync_ended: str | None
    branches: dict[str, str]
    tag_refs: dict[str, str]
    snippet: str | None = None  # README excerpt around the search words, when searching text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HubItem:
    """What the Hub's listing needs of one repo: its info (snapshot included), head sha and file names."""

    repo_type: str
    repo_id: str
    sha: str
    info: dict[str, Any]
    siblings: list[str]
    total_size: int


# -- build --------------------------------------------------------------------------------------

def _entry(store: Store, objects: RepoObjects) -> tuple[dict[str, Any], str] | None:
    """The repos row and README of one published repo; None if no ref names a commit.

    Raises ValueError if its refs or manifest cannot be read.
    """
    refs = read_refs(store, objects.repo)
    chosen = refs.default_revision()
    if chosen is None:
        return None
    revision, sha = chosen
    manifest = read_manifest(store, objects.manifest_key(sha))
    meta = read_meta(store, objects.repo) if objects.meta is not None else None
    return _row(manifest, refs, revision, meta), _readme(store, manifest)


def _restricted(refs: Refs, meta: RepoMeta | None) -> bool:
    """refs.json decides, as in serve (not recorded counts as restricted); a snapshot may only tighten it."""
    return refs.restricted is not False or bool(meta and meta.restricted)


def _row(manifest: CommitManifest, refs: Refs, revision: str, meta: RepoMeta | None = None) -> dict[str, Any]:
    info = {**manifest.info, **(meta.fields if meta else {})}
    info.pop("siblings", None)
    gated = info.get("gated")
    private = bool(info.get("private"))
    return {
        "repo_type": manifest.repo_type, "repo_id": manifest.repo_id,
        "author": info.get("author") or manifest.repo.namespace, "revision": revision, "sha": manifest.sha,
        "total_size": manifest.total_size, "file_count": len(manifest.files),
        "last_modified": info.get("lastModified"), "mirrored_at": hf_date(refs.updated_at),
        "tags": [t for t in info.get("tags") or [] if isinstance(t, str)],
        "library": info.get("library_name"), "pipeline": info.get("pipeline_tag"),
        "gated": gated if isinstance(gated, str) and gated else None,
        "private": int(private), "restricted": int(_restricted(refs, meta)),
        "downloads": int(info.get("downloads") or 0), "likes": int(info.get("likes") or 0),
        "trending_score": float(info.get("trendingScore") or 0), "created_at": str(info.get("createdAt") or ""),
        "gated_value": json.dumps(gated if gated is not None else False), "info": info,
        "siblings": [f.path for f in manifest.files],
        "popularity_at": hf_date(meta.fetched_at) if meta else None, "upstream": refs.upstream,
        "branches": refs.branches, "tag_refs": refs.tags,
    }


def _readme(store: Store, manifest: CommitManifest) -> str:
    entry = manifest.file("README.md")
    if entry is None:
        return ""
    response = store.open(blob_key(entry.sha256), 0, min(entry.size, README_MAX_BYTES)) if entry.size else None
    if response is None:
        return ""
    try:
        return response.read().decode("utf-8", errors="replace")
    finally:
        response.close()
        response.release_conn()


def write_catalog(path: Path, entries: Iterable[tuple[dict[str, Any], str]], built_at: datetime,
                  stats: dict[str, Any] | None = None) -> int:
    """Write a fresh catalog file from (row, readme) pairs and bucket-wide `stats`; returns the number of repos."""
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA)
        count = 0
        for row, readme in entries:
            values = {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()}
            cur = db.execute(f"INSERT INTO repos ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                             list(values.values()))
            tags = list(dict.fromkeys(row["tags"]))
            db.executemany("INSERT INTO repo_tags VALUES (?, ?)", [(cur.lastrowid, t) for t in tags])
            db.execute("INSERT INTO repos_fts (rowid, repo_id, tags, readme) VALUES (?, ?, ?, ?)",
                       (cur.lastrowid, row["repo_id"], " ".join(tags), readme))
            db.execute("INSERT INTO ids_fts (rowid, repo_id) VALUES (?, ?)", (cur.lastrowid, row["repo_id"]))
            count += 1
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("format", str(CATALOG_FORMAT)), ("built_at", hf_date(built_at)), ("repos", str(count)),
            *((k, json.dumps(v)) for k, v in (stats or {}).items())])
        db.commit()
        db.execute("VACUUM")
    finally:
        db.close()
    return count


def build_catalog(settings: Settings, store: Store, *, now: datetime | None = None) -> str:
    """Build the catalog from the bucket, publish it, point latest.json at it; returns its key.

    latest.json: {"format", "key" (the snapshot to download), "built_at", "repos", "size", "problems"}.
    Repos whose refs or manifest cannot be read are left out and named in `problems` (verify reports
    them in detail); one bad repo never blocks the catalog of the others.
    """
    built_at = now or datetime.now(UTC)
    listing = list_repos(store)
    published = {str(o.repo): o for o in listing.repos.values() if o.refs is not None}
    results, errors = read_many(published, lambda name: _entry(store, published[name]))
    entries = [r for r in results.values() if r is not None]
    problems = [f"{name}: {errors[name]}" for name in sorted(errors)]
    stats, outcomes = bucket_stats(store, listing), _outcomes(store)
    for row, _ in entries:
        outcome = outcomes.get((row["repo_type"], row["repo_id"])) or {}
        row.update(sync_ok=None if "ok" not in outcome else int(outcome["ok"]), sync_error=outcome.get("error"),
                   sync_started=outcome.get("started"), sync_ended=outcome.get("ended"))
    key = catalog_key(built_at)
    with tempfile.TemporaryDirectory(prefix="hubmirror-catalog-") as tmp:
        path = Path(tmp) / "catalog.sqlite"
        count = write_catalog(path, sorted(entries, key=lambda e: (e[0]["repo_type"], e[0]["repo_id"])), built_at,
                              stats)
        size = path.stat().st_size
        with path.open("rb") as fh:
            store.put_stream(key, fh, size, "application/vnd.sqlite3")
    store.put_json(CATALOG_LATEST, {"format": CATALOG_FORMAT, "key": key, "built_at": hf_date(built_at),
                                    "repos": count, "size": size, "problems": problems})
    _prune(store, keep=key)
    return key


def bucket_stats(store: Store, listing: RepoListing) -> dict[str, Any]:
    """Bucket-wide figures for /api/cache/stats: logical bytes (every retained manifest's files) against stored
    bytes (distinct bodies), i.e. what deduplication saves."""
    manifests, _ = read_many(listing.manifest_keys(), lambda key: read_manifest(store, key))
    blobs, _ = list_blobs(store)
    updated = [o.refs.last_modified for o in listing.repos.values() if o.refs and o.refs.last_modified]
    return {"manifests": len(manifests), "files": sum(len(m.files) for m in manifests.values()),
            "logical_bytes": sum(m.total_size for m in manifests.values()), "blobs": len(blobs),
            "stored_bytes": sum(b.size for b in blobs.values()),
            "last_sync": hf_date(max(updated)) if updated else None}


def _outcomes(store: Store) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest sync outcome per repo, from the most recent RUNS_READ sync reports."""
    jobs = [j for j in list_jobs(store) if j.kind == "sync"][:RUNS_READ]
    return repo_outcomes(list(read_jobs(store, jobs).values()))


def _prune(store: Store, keep: str) -> None:
    snapshots = sorted(o.key for o in store.list(CATALOG_PREFIX) if o.key.endswith(".sqlite"))
    for key in snapshots[:-SNAPSHOTS_KEPT]:
        if key != keep:
            store.delete(key)


# -- read ---------------------------------------------------------------------------------------

def fetch_latest(store: Store, dest_dir: Path, current_key: str | None = None) -> tuple[str, Path] | None:
    """Download the catalog latest.json names into dest_dir, unless it is `current_key` already.

    Returns (key, local path) or None when no catalog was built yet. Read-only: serve may call it.
    """
    latest = store.get_json(CATALOG_LATEST)
    if not isinstance(latest, dict) or not isinstance(latest.get("key"), str):
        return None
    key = latest["key"]
    path = Path(dest_dir) / key.rsplit("/", 1)[-1]
    if key == current_key and path.exists():
        return key, path
    data = store.get_bytes(key)
    if data is None:
        return None
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return key, path


def fts_query(text: str) -> str | None:
    """A safe FTS5 query from free text: every word must appear (as a prefix); None if no words."""
    words = _WORD_RE.findall(text)
    return " ".join(f'"{w}"*' for w in words) if words else None


class Catalog:
    """Read-only access to one catalog file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._memo: dict[str, Any] = {}
        fmt = self.meta().get("format")
        if fmt != str(CATALOG_FORMAT):
            self._db.close()
            raise ValueError(f"{self.path} is catalog format {fmt!r}; this hubmirror reads {CATALOG_FORMAT}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def stats(self) -> dict[str, Any]:
        """The bucket-wide figures recorded at build time, plus repos per type."""
        out: dict[str, Any] = {}
        for key, value in self.meta().items():
            if key not in ("format", "built_at", "repos"):
                out[key] = json.loads(value)
        out["repos"] = dict(self._db.execute("SELECT repo_type, count(*) FROM repos GROUP BY repo_type").fetchall())
        out["built_at"] = self.meta().get("built_at")
        return out

    def search(self, text: str | None = None, *, sort: str = "updated", limit: int = 50, offset: int = 0,
               **filters: Any) -> list[CatalogRow]:
        """Repos matching `text` and every filter, sorted and paged.

        `text` searches repo ids, tags and READMEs (every word, as a prefix); filters are author,
        tags (all must be present), type, library, pipeline, min_size/max_size (bytes), and
        restricted (True shows gated/private repos, False hides them, a collection of repo ids
        shows only those). `sort` is one of SORTS; "relevance" falls back to "updated" without text.
        """
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must be 0 or more")
        fts, where, params = self._where(text, **filters)
        if sort == "relevance" and not fts:
            sort = "updated"
        snippet = "snippet(repos_fts, 2, '[', ']', ' … ', 16)" if fts else "NULL"
        sql = f"SELECT r.*, {snippet} AS snippet {self._from(fts, where)} ORDER BY {SORTS[sort]} LIMIT ? OFFSET ?"
        return [self._row(r) for r in self._db.execute(sql, [*params, limit, offset]).fetchall()]

    def hub_listing(self, type: str, *, search: Sequence[str] = (), author: str | None = None,
                    tags: Sequence[str] = (), pipeline: str | None = None, gated: bool | None = None,
                    sort: str | None = None, ascending: bool = False, visible: bool | Iterable[str] = True,
                    limit: int = 1000, offset: int = 0) -> list[HubItem]:
        """The Hub's repo listing (`GET /api/models`) over the catalogued repos of one type.

        Like the Hub: every `search` is a case-insensitive substring of the id, `author` is the namespace
        (case-insensitive), every tag must be present, `gated` keeps gated (True) or public (False) repos, and
        `sort` is an info key of HUB_SORTS (descending unless `ascending`; ties and no sort: by id). `visible`
        is True (all), False (no restricted repo) or the ids of the restricted repos the caller was granted.
        """
        if sort is not None and sort not in HUB_SORTS:
            raise ValueError(f"unknown sort {sort!r}: use one of {', '.join(HUB_SORTS)}")
        where: list[str] = ["r.repo_type = ?"]
        params: list[str] = [repo_type(type)]
        for text in search:
            if len(text) >= 3:  # substring through the trigram index (case-insensitive, like the Hub)
                where.append("r.id IN (SELECT rowid FROM ids_fts WHERE ids_fts MATCH ?)")
                params.append('"' + text.replace('"', '""') + '"')
            else:
                where.append("instr(lower(r.repo_id), ?) > 0")
                params.append(text.lower())
        if author:
            where.append("lower(r.author) = ?")
            params.append(author.lower())
        if pipeline:
            where.append("r.pipeline = ?")
            params.append(pipeline)
        if gated is not None:
            where.append("r.gated IS NOT NULL" if gated else "r.gated IS NULL")
        for tag in tags:
            where.append("EXISTS (SELECT 1 FROM repo_tags t WHERE t.repo = r.id AND t.tag = ?)")
            params.append(tag)
        if visible is False:
            where.append("r.restricted = 0")
        elif visible is not True:
            allowed = list(visible)
            where.append(f"(r.restricted = 0 OR r.repo_id IN ({', '.join('?' * len(allowed)) or 'NULL'}))")
            params.extend(allowed)
        order = "r.repo_id"
        if sort is not None:
            order = f"{HUB_SORTS[sort]} {'ASC' if ascending else 'DESC'}, r.repo_id"
        sql = (f"SELECT r.repo_type, r.repo_id, r.sha, r.info, r.siblings, r.total_size FROM repos r "
               f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ? OFFSET ?")
        return [HubItem(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5])
                for row in self._db.execute(sql, [*params, limit, offset]).fetchall()]

    def hub_item(self, type: str, repo_id: str) -> HubItem | None:
        """One repo's listing data (its info with the popularity snapshot), for `repo_info(expand=...)`."""
        row = self._db.execute("SELECT repo_type, repo_id, sha, info, siblings, total_size FROM repos "
                               "WHERE repo_type = ? AND repo_id = ?", (repo_type(type), repo_id)).fetchone()
        return HubItem(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5]) if row else None

    def restricted_ids(self, type: str | None = None) -> list[tuple[str, str]]:
        """(type, id) of every restricted repo: few, so callers check grants on them in Python."""
        every = self._memo.get("restricted")
        if every is None:  # the file never changes: read once (covered by the repos_restricted index)
            every = self._memo["restricted"] = [
                (r[0], r[1]) for r in self._db.execute("SELECT repo_type, repo_id FROM repos WHERE restricted = 1")]
        wanted = repo_type(type) if type else None
        return [r for r in every if wanted is None or r[0] == wanted]

    def ids(self) -> frozenset[tuple[str, str]]:
        """(type, id) of every catalogued repo."""
        found = self._memo.get("ids")
        if found is None:
            found = self._memo["ids"] = frozenset(
                (r[0], r[1]) for r in self._db.execute("SELECT repo_type, repo_id FROM repos"))
        return found

    def count(self, text: str | None = None, **filters: Any) -> int:
        """How many repos `search` would find with the same text and filters, over all pages."""
        fts, where, params = self._where(text, **filters)
        return self._db.execute(f"SELECT count(*) {self._from(fts, where)}", params).fetchone()[0]

    def get(self, repo_type: str, repo_id: str) -> CatalogRow | None:
        row = self._db.execute("SELECT r.*, NULL AS snippet FROM repos r WHERE repo_type = ? AND repo_id = ?",
                               (repo_type, repo_id)).fetchone()
        return self._row(row) if row else None

    def readme(self, repo_type: str, repo_id: str) -> str | None:
        row = self._db.execute("SELECT f.readme FROM repos r JOIN repos_fts f ON f.rowid = r.id "
                               "WHERE r.repo_type = ? AND r.repo_id = ?",
                               (repo_type, repo_id)).fetchone()
        return row[0] if row else None

    @staticmethod
    def _from(fts: bool, where: list[str]) -> str:
        join = " JOIN repos_fts ON repos_fts.rowid = r.id" if fts else ""
        return f"FROM repos r{join}" + (" WHERE " + " AND ".join(where) if where else "")

    @staticmethod
    def _where(text: str | None = None, *, author: str | None = None, tags: Sequence[str] = (),
               type: str | None = None, library: str | None = None, pipeline: str | None = None,
               gated: bool | None = None,
               min_size: int | None = None, max_size: int | None = None,
               restricted: bool | Iterable[str] = True) -> tuple[bool, list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        query = fts_query(text) if text else None
        if text and query is None:
            where.append("0")  # text without a single word matches nothing rather than everything
        if query is not None:
            where.append("repos_fts MATCH ?")
            params.append(query)
        for column, value in (("author", author), ("library", library), ("pipeline", pipeline)):
            if value:
                where.append(f"r.{column} = ?")
                params.append(value)
        if type:
            where.append("r.repo_type = ?")
            params.append(repo_type(type))
        if isinstance(tags, str):
            tags = [tags]
        for tag in tags:
            where.append("EXISTS (SELECT 1 FROM repo_tags t WHERE t.repo = r.id AND t.tag = ?)")
            params.append(tag)
        if gated is not None:
            where.append("r.gated IS NOT NULL" if gated else "r.gated IS NULL")
        if min_size is not None:
            where.append("r.total_size >= ?")
            params.append(min_size)
        if max_size is not None:
            where.append("r.total_size <= ?")
            params.append(max_size)
        if restricted is False:
            where.append("r.restricted = 0")
        elif restricted is not True:
            allowed = list(restricted)
            where.append(f"(r.restricted = 0 OR r.repo_id IN ({', '.join('?' * len(allowed)) or 'NULL'}))")
            params.extend(allowed)
        return query is not None, where, params

    @staticmethod
    def _row(row: sqlite3.Row) -> CatalogRow:
        data = dict(row)
        return CatalogRow(
            repo_type=data["repo_type"], repo_id=data["repo_id"], author=data["author"],
            revision=data["revision"], sha=data["sha"], total_size=data["total_size"],
            file_count=data["file_count"], last_modified=data["last_modified"], mirrored_at=data["mirrored_at"],
            tags=json.loads(data["tags"]), library=data["library"], pipeline=data["pipeline"],
            gated=data["gated"], private=bool(data["private"]), restricted=bool(data["restricted"]),
            downloads=data["downloads"], likes=data["likes"], trending_score=data["trending_score"],
            created_at=data["created_at"], popularity_at=data["popularity_at"],
            upstream=data["upstream"], sync_ok=None if data["sync_ok"] is None else bool(data["sync_ok"]),
            sync_error=data["sync_error"],
            sync_started=data["sync_started"], sync_ended=data["sync_ended"], branches=json.loads(data["branches"]),
            tag_refs=json.loads(data["tag_refs"]), snippet=data["snippet"],
        )
