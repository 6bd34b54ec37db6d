"""The popularity snapshot (meta.json): refreshed by every sync and trending refresh, never by changing a manifest."""

from __future__ import annotations

import uuid

from huggingface_hub import HfApi

from mirror_core.layout import RepoRef, commit_key, repo_meta_key
from mirror_core.popularity import FIELDS, read_meta
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from mirror_core.trending import refresh_trending


def _upstream_fields(hub, repo: RepoRef) -> dict:
    """The snapshot fields exactly as the fake hub's repo info gives them (raw JSON, not the client's objects)."""
    info = HfApi(endpoint=hub.url, token=hub.tokens["service"]).model_info(repo.repo_id, expand=list(FIELDS))
    raw = {"downloads": info.downloads, "likes": info.likes, "trendingScore": info.trending_score,
           "tags": info.tags, "pipeline_tag": info.pipeline_tag, "library_name": info.library_name,
           "gated": info.gated, "private": info.private}
    return raw


def test_every_sync_refreshes_the_snapshot_and_leaves_the_manifest_alone(hub, make) -> None:
    settings = make()
    store = Store(settings.s3)
    repo = RepoRef.parse(f"pop-{uuid.uuid4().hex[:8]}/m")
    card = {"license": "mit", "library_name": "transformers"}
    hub.create_repo("model", repo.repo_id, {"README.md": b"# m\n", "config.json": b"{}"},
                    meta={"likes": 3, "downloads": 10, "trendingScore": 2, "tags": ["a", "transformers"],
                          "library_name": "transformers", "pipeline_tag": "fill-mask", "card": card})
    first = sync_repo(settings, repo, write_report=False)
    assert first.ok
    meta = read_meta(store, repo)
    assert meta is not None and meta.source == "sync"
    assert {k: meta.fields[k] for k in _upstream_fields(hub, repo)} == _upstream_fields(hub, repo)
    assert meta.fields["cardData"] == card and meta.fields["createdAt"].endswith("Z")
    manifest_key = commit_key(repo, first.revisions["main"])
    manifest = store.get_bytes(manifest_key)
    assert b'"likes"' not in manifest and b'"downloads"' not in manifest

    hub.set_meta("model", repo.repo_id, likes=99, downloads=12345, trendingScore=50, tags=["a", "b"])
    again = sync_repo(settings, repo, write_report=False)
    assert again.ok and again.skipped and again.bytes_fetched == 0
    meta = read_meta(store, repo)
    assert (meta.fields["likes"], meta.fields["downloads"], meta.fields["trendingScore"]) == (99, 12345, 50)
    assert meta.fields["tags"] == ["a", "b"]
    assert store.get_bytes(manifest_key) == manifest  # the counters never touch the immutable manifest


def test_trending_refresh_writes_the_snapshot_of_selected_and_mirrored_repos(hub, make) -> None:
    settings = make(selection={"trending": {"models": {"top": 6}}})
    store = Store(settings.s3)
    snapshot = refresh_trending(settings, store)
    api = HfApi(endpoint=hub.url, token=hub.tokens["service"])
    top = list(api.list_models(sort="trending_score", limit=6, expand=list(FIELDS)))
    assert len(top) == 6
    for model in top:
        repo = RepoRef.parse(model.id)
        meta = read_meta(store, repo)
        selected = model.id in {p.repo_id for p in snapshot.repos}
        assert (meta is not None) == selected, model.id
        if meta is not None:
            assert meta.source == "trending"
            assert (meta.fields["trendingScore"], meta.fields["likes"], meta.fields["downloads"]) == (
                model.trending_score, model.likes, model.downloads)
            assert meta.fields["gated"] == model.gated and meta.fields["tags"] == model.tags
    assert all(not store.exists(repo_meta_key(RepoRef.parse(c["id"]))) for c in snapshot.considered
               if not c["selected"])
