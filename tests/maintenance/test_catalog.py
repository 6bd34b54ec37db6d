"""The search catalog: built from manifests, published snapshot-then-latest, searchable read-only."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from mirror_core.catalog import SNAPSHOTS_KEPT, Catalog, build_catalog, fetch_latest
from mirror_core.layout import CATALOG_LATEST, CATALOG_PREFIX, RepoRef
from tests.bucket import RepoBuilder

README_LLAMA = b"---\nlicense: mit\n---\n# Tiny llama\nA small language model for translation of Welsh poetry.\n"
README_VISION = b"# Vision\nClassifies pictures of cats and dogs.\n"


@pytest.fixture
def filled(store):
    llama = RepoBuilder(store, RepoRef.parse("acme/tiny-llama"))
    llama.commit("l1", {"README.md": README_LLAMA, "model.bin": b"x" * 5000}, lfs=("model.bin",), info={
        "author": "acme", "tags": ["text-generation", "welsh"], "library_name": "transformers",
        "pipeline_tag": "text-generation", "lastModified": "2024-03-01T00:00:00.000Z", "downloads": 10,
        "gated": False, "private": False})
    vision = RepoBuilder(store, RepoRef.parse("zeta/vision-net"))
    vision.commit("v1", {"README.md": README_VISION, "w.bin": b"y" * 900}, info={
        "tags": ["image-classification"], "library_name": "timm", "lastModified": "2024-05-01T00:00:00.000Z",
        "gated": "manual", "downloads": 99})
    data = RepoBuilder(store, RepoRef.parse("acme/poems", "dataset"))
    data.commit("d1", {"data.csv": b"a,b\n" * 10}, info={"tags": ["welsh"]})
    data.commit("d2", {"data.csv": b"a,b\n" * 20, "README.md": b"Welsh poems corpus"}, branch="dev")
    canonical = RepoBuilder(store, RepoRef.parse("gpt2"))
    canonical.commit("g1", {"config.json": b"{}"}, info={"tags": ["text-generation"]})
    unpublished = RepoBuilder(store, RepoRef.parse("acme/wip"))
    unpublished.commit("w1", {"a": b"a"}, publish=False)
    return store


def _open(store, tmp_path) -> Catalog:
    key, path = fetch_latest(store, tmp_path)
    return Catalog(path)


def test_build_publishes_snapshot_then_latest(bucket_settings, filled, tmp_path):
    key = build_catalog(bucket_settings, filled)
    assert key.startswith(CATALOG_PREFIX) and key.endswith(".sqlite")
    latest = filled.get_json(CATALOG_LATEST)
    assert latest["key"] == key and latest["repos"] == 4 and latest["problems"] == []
    with _open(filled, tmp_path) as catalog:
        rows = catalog.search(sort="name", limit=10)
        assert [(r.repo_type, r.repo_id) for r in rows] == [
            ("datasets", "acme/poems"), ("models", "acme/tiny-llama"), ("models", "gpt2"),
            ("models", "zeta/vision-net")]
        llama = catalog.get("models", "acme/tiny-llama")
        assert llama.total_size == len(README_LLAMA) + 5000 and llama.file_count == 2
        assert llama.tags == ["text-generation", "welsh"] and llama.library == "transformers"
        assert llama.revision == "main" and not llama.restricted
        assert catalog.readme("models", "acme/tiny-llama") == README_LLAMA.decode()
        assert catalog.get("models", "zeta/vision-net").restricted
        poems = catalog.get("datasets", "acme/poems")
        assert poems.revision == "main" and set(poems.branches) == {"main", "dev"}


def test_search_text_filters_and_sorts(bucket_settings, filled, tmp_path):
    build_catalog(bucket_settings, filled)
    with _open(filled, tmp_path) as catalog:
        hits = catalog.search("welsh POETRY")
        assert [r.repo_id for r in hits] == ["acme/tiny-llama"] and "[Welsh]" in hits[0].snippet
        assert {r.repo_id for r in catalog.search("welsh")} == {"acme/tiny-llama", "acme/poems"}  # tag match
        assert [r.repo_id for r in catalog.search("transl")] == ["acme/tiny-llama"]  # prefix
        assert catalog.search('"; DROP TABLE repos; --') == []
        assert catalog.search("***") == []
        assert [r.repo_id for r in catalog.search(tags=["text-generation"], sort="name")] == [
            "acme/tiny-llama", "gpt2"]
        assert [r.repo_id for r in catalog.search(type="dataset")] == ["acme/poems"]
        assert [r.repo_id for r in catalog.search(author="acme", type="model")] == ["acme/tiny-llama"]
        assert [r.repo_id for r in catalog.search(sort="size")][:2] == ["acme/tiny-llama", "zeta/vision-net"]
        assert [r.repo_id for r in catalog.search(min_size=100, max_size=1000)] == ["zeta/vision-net"]
        assert catalog.search(sort="updated")[0].repo_id in ("gpt2", "acme/poems")  # no lastModified: mirrored now
        assert [r.repo_id for r in catalog.search(sort="downloads", limit=2)] == ["zeta/vision-net",
                                                                                 "acme/tiny-llama"]
        assert "zeta/vision-net" not in {r.repo_id for r in catalog.search(restricted=False)}
        assert "zeta/vision-net" in {r.repo_id for r in catalog.search(restricted=["zeta/vision-net"])}
        assert catalog.count() == 4 and catalog.count("welsh") == 2 and catalog.count(type="dataset") == 1
        assert len(catalog.search(limit=2, offset=3, sort="name")) == 1
        with pytest.raises(ValueError, match="unknown sort"):
            catalog.search(sort="random")


def test_catalog_is_read_only_and_old_snapshots_are_pruned(bucket_settings, filled, tmp_path):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    keys = [build_catalog(bucket_settings, filled, now=start + timedelta(minutes=i))
            for i in range(SNAPSHOTS_KEPT + 2)]
    listed = sorted(o.key for o in filled.list(CATALOG_PREFIX) if o.key.endswith(".sqlite"))
    assert listed == keys[-SNAPSHOTS_KEPT:]
    key, path = fetch_latest(filled, tmp_path)
    assert key == keys[-1]
    assert fetch_latest(filled, tmp_path, current_key=key) == (key, path)
    with Catalog(path) as catalog, pytest.raises(sqlite3.OperationalError, match="readonly"):
        catalog._db.execute("DELETE FROM repos")


def test_no_catalog_yet(store, tmp_path):
    assert fetch_latest(store, tmp_path) is None


def test_catalog_of_a_bucket_filled_by_sync(mirror_settings, fakehub, tmp_path):
    from hubmirror.demohub.corpus import GATED_MODEL, SINGLE_SEGMENT_MODEL
    from mirror_core.store import Store
    from mirror_core.sync import sync_repo
    from tests.maintenance.conftest import PLAYGROUND

    repos = [PLAYGROUND, RepoRef.parse(GATED_MODEL), RepoRef.parse(SINGLE_SEGMENT_MODEL)]
    for repo in repos:
        assert sync_repo(mirror_settings, repo).ok
    store = Store(mirror_settings.s3)
    build_catalog(mirror_settings, store)
    api_truth = {r: fakehub.repo_record(r.singular_type, r.repo_id) for r in repos}
    with _open(store, tmp_path) as catalog:
        assert catalog.count() == 3
        for repo, truth in api_truth.items():
            row = catalog.get(repo.type, repo.repo_id)
            assert row.sha == truth["branches"]["main"]
            assert row.total_size == sum(f["size"] for f in truth["files"].values())
            assert row.file_count == len(truth["files"])
            assert row.restricted == bool(truth["gated"] or truth["private"])
        assert [r.repo_id for r in catalog.search(PLAYGROUND.name)] == [PLAYGROUND.repo_id]
        assert [r.repo_id for r in catalog.search("tinygpt", type="model")] == [SINGLE_SEGMENT_MODEL]
        assert GATED_MODEL not in {r.repo_id for r in catalog.search(restricted=False)}
        assert [r.repo_id for r in catalog.search(tags=["hubmirror-trending"])] == [PLAYGROUND.repo_id]


@pytest.mark.parametrize(("refs_flags", "meta_fields", "info", "restricted"), [
    ({}, None, {}, True),  # nothing known: fail closed
    ({}, None, {"private": False, "gated": False}, True),  # refs decide: a public manifest does not open it
    ({"private": False, "gated": False}, None, {}, False),
    ({"private": False, "gated": False}, {"private": False, "gated": "auto"}, {}, True),  # gated since: restricted
    ({"private": False, "gated": "manual"}, {"private": False, "gated": False}, {}, True),  # refs say so: restricted
    ({"private": True, "gated": False}, None, {"private": False, "gated": False}, True),
    ({}, {"private": False, "gated": False}, {}, True),  # nor a public snapshot
])
def test_restriction_fails_closed(refs_flags, meta_fields, info, restricted):
    from mirror_core.catalog import _row
    from mirror_core.manifest import CommitManifest, Refs
    from mirror_core.popularity import RepoMeta

    sha = "a" * 40
    manifest = CommitManifest(repo_type="models", repo_id="o/m", sha=sha, upstream="u", files=[],
                              info={"id": "o/m", **info})
    refs = Refs(upstream="u", **refs_flags).with_ref("branches", "main", sha)
    meta = RepoMeta(repo_type="models", repo_id="o/m", upstream="u", source="sync", fields=meta_fields) \
        if meta_fields is not None else None
    assert _row(manifest, refs, "main", meta)["restricted"] == int(restricted)
