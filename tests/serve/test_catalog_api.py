"""list_models/list_datasets and model_info(expand=...) from the catalog, compared with the fake hub's own answers.

A real sync fills a bucket of its own, the real catalog build indexes it, `hubmirror serve` answers, and the real
huggingface_hub client asks both the mirror and the fake hub the same questions: for the mirrored repos the answers
must be equal (no hand-written catalog rows anywhere).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from huggingface_hub import HfApi

from hubmirror.demohub import corpus
from mirror_core.catalog import build_catalog
from mirror_core.layout import RepoRef
from mirror_core.popularity import FIELDS
from mirror_core.settings import Settings
from mirror_core.store import Store
from mirror_core.sync import sync_repo
from tests.conftest import make_settings
from tests.serve.server import ServeProcess, start_serve

ADMIN = "catalog-admin-token"
GRANTED = "catalog-granted-token"  # hubmirror-test/* only
PLAIN = "catalog-plain-token"
TOKENS = json.dumps([{"token": ADMIN, "name": "admin", "admin": True},
                     {"token": GRANTED, "name": "granted", "grants": ["hubmirror-test/*"]},
                     {"token": PLAIN, "name": "plain"}])
MODELS = [corpus.GATED_MODEL, corpus.PRIVATE_MODEL, corpus.SINGLE_SEGMENT_MODEL, *corpus.TRENDING_MODELS[:12]]
DATASETS = [corpus.DATASET, *corpus.TRENDING_DATASETS]
RESTRICTED = {corpus.GATED_MODEL, corpus.PRIVATE_MODEL,
              *(m for i, m in enumerate(corpus.TRENDING_MODELS[:12]) if i % 8 in (5, 7))}


@dataclass
class Catalogued:
    settings: Settings
    serve: ServeProcess
    hub: object

    def mirror(self, token: str | None = ADMIN) -> HfApi:
        return HfApi(endpoint=self.serve.url, token=token or False)

    def upstream(self) -> HfApi:
        return HfApi(endpoint=self.hub.url, token=self.hub.tokens["service"])


@pytest.fixture(scope="module")
def catalogued(s3_server, fakehub) -> Iterator[Catalogued]:
    settings = make_settings(
        s3_server, f"catalog-{uuid.uuid4().hex[:12]}", upstream_url=fakehub.url,
        upstream_token=fakehub.tokens["service"],
        transfer={"allowed_redirect_hosts": [fakehub.cdn_url.split("://", 1)[1]], "concurrency": 8})
    Store(settings.s3).ensure_bucket()
    for repo_id, type_ in [*((m, "models") for m in MODELS), *((d, "datasets") for d in DATASETS),
                           (corpus.SPACE, "spaces")]:
        result = sync_repo(settings, RepoRef.parse(repo_id, type_), write_report=False)
        assert result.ok, result.error
    build_catalog(settings, Store(settings.s3))
    serve = start_serve(settings, extra_env={"HUBMIRROR_SERVE_TOKENS": TOKENS, "HUBMIRROR_SERVE_LIST_TTL": "0.5"})
    yield Catalogued(settings, serve, fakehub)
    serve.stop()


def _same(mirror_items, upstream_items, mirrored: set[str]) -> None:
    got = list(mirror_items)
    expected = [m for m in upstream_items if m.id in mirrored]
    assert [m.id for m in got] == [m.id for m in expected]
    assert got == expected


QUERIES = [
    {},
    {"sort": "trending_score"}, {"sort": "downloads"}, {"sort": "likes"}, {"sort": "last_modified"},
    {"sort": "created_at"},
    {"search": "model-0"}, {"search": "MODEL-1", "sort": "likes"},
    {"author": "hubmirror-trending", "sort": "downloads"},
    {"filter": ["hubmirror-trending", "group-1"]}, {"filter": ["group-2", "license:apache-2.0"], "sort": "likes"},
    {"filter": "transformers", "sort": "trending_score"},
    {"pipeline_tag": corpus.PIPELINES[1]},
    {"gated": True, "sort": "likes"}, {"gated": False, "sort": "created_at"},
    {"expand": ["downloads", "likes", "trendingScore", "createdAt", "cardData", "tags", "gated"]},
    {"expand": ["sha", "lastModified", "library_name", "pipeline_tag", "private"], "sort": "trending_score"},
    {"full": True, "sort": "likes"}, {"cardData": True, "sort": "downloads"},
]


@pytest.mark.parametrize("query", QUERIES, ids=[json.dumps(q, sort_keys=True) for q in QUERIES])
def test_list_models_equals_the_hub_for_mirrored_repos(catalogued: Catalogued, query: dict) -> None:
    mirrored = set(MODELS)
    got = list(catalogued.mirror().list_models(**query))
    expected = [m for m in catalogued.upstream().list_models(**query) if m.id in mirrored]
    assert [m.id for m in got] == [m.id for m in expected]
    if query.get("full"):  # siblings, usedStorage, config: compare what a listing is read for
        for g, e in zip(got, expected, strict=True):
            assert (g.sha, g.likes, g.downloads, g.trending_score, g.tags, g.card_data, g.created_at) == (
                e.sha, e.likes, e.downloads, e.trending_score, e.tags, e.card_data, e.created_at)
            assert [s.rfilename for s in g.siblings] == [s.rfilename for s in e.siblings]
    else:
        assert got == expected


@pytest.mark.parametrize("query", [{}, {"sort": "likes"}, {"sort": "downloads"}, {"sort": "trending_score"},
                                   {"sort": "created_at"}, {"search": "dataset-1"}, {"filter": "format:csv"},
                                   {"expand": ["downloads", "likes", "cardData", "trendingScore"]}])
def test_list_datasets_equals_the_hub_for_mirrored_repos(catalogued: Catalogued, query: dict) -> None:
    got = list(catalogued.mirror().list_datasets(**query))
    expected = [d for d in catalogued.upstream().list_datasets(**query) if d.id in set(DATASETS)]
    assert [d.id for d in got] == [d.id for d in expected] and got == expected


def test_limit_and_link_paging(catalogued: Catalogued) -> None:
    everything = [m.id for m in catalogued.mirror().list_models(sort="likes")]
    assert [m.id for m in catalogued.mirror().list_models(sort="likes", limit=4)] == everything[:4]
    url = f"{catalogued.serve.url}/api/models?sort=likes&limit=4"
    pages, ids = 0, []
    while url:
        r = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 200
        ids += [m["id"] for m in r.json()]
        pages += 1
        url = r.links.get("next", {}).get("url")
        assert url is None or url.startswith(catalogued.serve.url)
    assert ids == everything and pages == -(-len(everything) // 4)
    ascending = httpx.get(f"{catalogued.serve.url}/api/models?sort=likes&direction=1",
                          headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert [m["id"] for m in ascending] == sorted(everything, key=lambda i: (
        next(m.likes for m in catalogued.mirror().list_models(search=i, expand=["likes"]) if m.id == i), i))


@pytest.mark.parametrize("sort", ["gated", "config", "cardData", "random"])
def test_unknown_sort_is_a_clear_400(catalogued: Catalogued, sort: str) -> None:
    r = httpx.get(f"{catalogued.serve.url}/api/models", params={"sort": sort})
    assert r.status_code == 400 and r.headers["x-error-code"] == "BadRequest"
    assert sort in r.json()["error"] and "trending_score" in r.json()["error"]
    for bad in ({"direction": "up"}, {"gated": "maybe"}, {"limit": "ten"}, {"expand": "likes", "full": "true"}):
        assert httpx.get(f"{catalogued.serve.url}/api/models", params=bad).status_code == 400


def test_model_info_expand_equals_the_hub(catalogued: Catalogued) -> None:
    keys = ["downloads", "likes", "trendingScore", "createdAt", "lastModified", "tags", "cardData",
            "library_name", "pipeline_tag", "sha"]
    for repo_id in [corpus.SINGLE_SEGMENT_MODEL, *corpus.TRENDING_MODELS[:4]]:
        got = catalogued.mirror().model_info(repo_id, expand=keys)
        assert got == catalogued.upstream().model_info(repo_id, expand=keys)
        assert got.downloads and got.likes and got.trending_score is not None
    full = catalogued.mirror(None).model_info(corpus.TRENDING_MODELS[1])
    truth = catalogued.upstream().model_info(corpus.TRENDING_MODELS[1])
    assert (full.downloads, full.likes, full.trending_score) == (truth.downloads, truth.likes, truth.trending_score)
    dataset = catalogued.mirror().dataset_info(corpus.TRENDING_DATASETS[1], expand=["downloads", "likes"])
    assert dataset == catalogued.upstream().dataset_info(corpus.TRENDING_DATASETS[1], expand=["downloads", "likes"])


def test_restricted_repos_are_listed_only_to_granted_identities(catalogued: Catalogued) -> None:
    everything = set(MODELS)
    assert {m.id for m in catalogued.mirror(ADMIN).list_models()} == everything
    assert {m.id for m in catalogued.mirror(None).list_models()} == everything - RESTRICTED
    assert {m.id for m in catalogued.mirror(PLAIN).list_models()} == everything - RESTRICTED
    granted = {m.id for m in catalogued.mirror(GRANTED).list_models()}
    assert granted == everything - RESTRICTED | {corpus.GATED_MODEL, corpus.PRIVATE_MODEL}
    assert not {m.id for m in catalogued.mirror(None).list_models(gated=True)}


def test_popularity_moves_without_a_commit(catalogued: Catalogued) -> None:
    author = f"pop-{uuid.uuid4().hex[:8]}"
    hub, store = catalogued.hub, Store(catalogued.settings.s3)
    for name, likes in (("a", 1), ("b", 2)):
        hub.create_repo("model", f"{author}/{name}", {"README.md": b"# x\n"}, meta={"likes": likes, "downloads": 5})
        assert sync_repo(catalogued.settings, RepoRef.parse(f"{author}/{name}"), write_report=False).ok
    build_catalog(catalogued.settings, store)
    time.sleep(1)
    assert [m.id for m in catalogued.mirror().list_models(author=author, sort="likes")] == [
        f"{author}/b", f"{author}/a"]
    hub.set_meta("model", f"{author}/a", likes=50)
    assert sync_repo(catalogued.settings, RepoRef.parse(f"{author}/a"), write_report=False).skipped
    build_catalog(catalogued.settings, store)
    time.sleep(1)
    got = list(catalogued.mirror().list_models(author=author, sort="likes", expand=list(FIELDS)))
    assert [m.id for m in got] == [f"{author}/a", f"{author}/b"] and got[0].likes == 50
    assert got == list(catalogued.upstream().list_models(author=author, sort="likes", expand=list(FIELDS)))


def _last_commits(api: HfApi, repo_id: str) -> dict[str, tuple]:
    return {e.path: (e.last_commit.oid, e.last_commit.title, e.last_commit.date)
            for e in api.list_repo_tree(repo_id, recursive=True, expand=True)}


def test_tree_last_commit_is_per_path_and_inherited_incrementally(catalogued: Catalogued) -> None:
    hub, repo_id = catalogued.hub, f"lastcommit-{uuid.uuid4().hex[:8]}/m"
    repo = RepoRef.parse(repo_id)
    hub.create_repo("model", repo_id, {"a.txt": b"a1", "sub/b.txt": b"b1", "sub/c.txt": b"c1"})
    hub.commit("model", repo_id, {"sub/b.txt": b"b2"}, message="change b")
    hub.commit("model", repo_id, {"d.txt": b"d1"}, message="add d")
    assert sync_repo(catalogued.settings, repo, write_report=False).ok
    upstream = _last_commits(catalogued.upstream(), repo_id)
    assert len({c[0] for c in upstream.values()}) == 3  # three different last commits among the paths
    time.sleep(0.6)
    assert _last_commits(catalogued.mirror(), repo_id) == upstream

    hub.commit("model", repo_id, {"a.txt": b"a2"}, message="change a")
    before = len(hub.requests())
    assert sync_repo(catalogued.settings, repo, write_report=False).ok
    asked = [r for r in hub.requests()[before:] if "/paths-info/" in r["path"]]
    assert len(asked) == 1  # only a.txt changed: every other path inherited its lastCommit
    time.sleep(6)  # refs TTL
    upstream = _last_commits(catalogued.upstream(), repo_id)
    assert _last_commits(catalogued.mirror(), repo_id) == upstream
    infos = catalogued.mirror().get_paths_info(repo_id, ["a.txt", "sub", "sub/c.txt"], expand=True)
    assert {i.path: (i.last_commit.oid, i.last_commit.title) for i in infos} == {
        p: upstream[p][:2] for p in ("a.txt", "sub", "sub/c.txt")}


# -- mirror APIs ------------------------------------------------------------------------------------

def _get(catalogued: Catalogued, path: str, token: str | None = ADMIN, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{catalogued.serve.url}{path}", params=params, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def with_history(catalogued: Catalogued) -> dict:
    """A trending refresh, a sync run with a gated repo, a failed run and a repo with a distinctive README."""
    from mirror_core.trending import refresh_trending

    settings, hub = catalogued.settings, catalogued.hub
    store = Store(settings.s3)
    trending_settings = settings.model_copy(update={"selection": settings.selection.model_copy(update={
        "trending": settings.selection.trending.model_copy(update={
            "models": settings.selection.trending.models.model_copy(update={"top": 8, "include_gated": True})})})})
    snapshot = refresh_trending(trending_settings, store)
    unique = f"readme-{uuid.uuid4().hex[:6]}"
    hub.create_repo("model", f"{unique}/words", {"README.md": b"# Words\nThe zanzibarian lexicon of sea shanties.\n",
                                                 "weights.bin": b"w" * 70_000})
    ok = sync_repo(settings, RepoRef.parse(f"{unique}/words"), run_id=f"sync-{unique}")
    gated = sync_repo(settings, RepoRef.parse(corpus.TRENDING_MODELS[5]), run_id=f"sync-{unique}-gated")
    failed = sync_repo(settings, RepoRef.parse(corpus.TRENDING_MODELS[0]), ["no-such-branch"],
                       run_id=f"sync-{unique}-failed")
    assert ok.ok and gated.ok and not failed.ok
    build_catalog(settings, store)
    time.sleep(1)
    return {"snapshot": snapshot, "readme_repo": f"{unique}/words", "runs": (ok, gated, failed)}


def test_cache_stats_match_the_bucket_and_hide_restricted(catalogued: Catalogued, with_history: dict) -> None:
    store = Store(catalogued.settings.s3)
    path = f"/{with_history['readme_repo']}/resolve/main/README.md"
    for _ in range(3):
        assert httpx.get(f"{catalogued.serve.url}{path}").status_code == 200
    stats = _get(catalogued, "/api/cache/stats").json()
    blobs = [o for o in store.list("blobs/")]
    assert stats["stored_bytes"] == sum(o.size for o in blobs) and stats["blobs"] == len(blobs)
    assert stats["logical_bytes"] >= stats["stored_bytes"] > 0
    assert stats["dedup_ratio"] == round(stats["logical_bytes"] / stats["stored_bytes"], 3)
    assert stats["repos"]["total"] == sum(v for k, v in stats["repos"].items() if k != "total")
    assert stats["most_requested"][0] == {"type": "model", "id": with_history["readme_repo"], "requests": 3}
    anonymous = _get(catalogued, "/api/cache/stats", None).json()
    assert anonymous["repos"]["total"] == stats["repos"]["total"] - len(RESTRICTED)
    assert stats["last_sync"].endswith("Z") and stats["catalog_built_at"].endswith("Z")


def test_cache_repos_search_filters_sort_paging(catalogued: Catalogued, with_history: dict) -> None:
    hits = _get(catalogued, "/api/cache/repos", search="zanzibarian").json()
    assert [i["id"] for i in hits["items"]] == [with_history["readme_repo"]]  # README full text
    assert "zanzibarian" in hits["items"][0]["snippet"].lower()
    by_likes = _get(catalogued, "/api/cache/repos", type="model", sort="likes", limit=5).json()
    likes = [i["likes"] for i in by_likes["items"]]
    assert likes == sorted(likes, reverse=True) and len(likes) == 5
    assert by_likes["pagination"]["limit"] == 5 and by_likes["pagination"]["pages"] == math.ceil(
        by_likes["pagination"]["total"] / 5)
    second = _get(catalogued, "/api/cache/repos", type="model", sort="likes", limit=5, page=2).json()
    assert not {i["id"] for i in second["items"]} & {i["id"] for i in by_likes["items"]}
    sized = _get(catalogued, "/api/cache/repos", sizeGte=60_000, sizeLte=80_000).json()["items"]
    assert with_history["readme_repo"] in {i["id"] for i in sized}
    assert all(60_000 <= i["size"] <= 80_000 for i in sized)
    tagged = _get(catalogued, "/api/cache/repos", tag=["group-1", "hubmirror-trending"]).json()["items"]
    assert tagged and all({"group-1", "hubmirror-trending"} <= set(i["tags"]) for i in tagged)
    gated = _get(catalogued, "/api/cache/repos", gated="true", limit=100).json()["items"]
    assert gated and all(i["gated"] for i in gated)
    assert not _get(catalogued, "/api/cache/repos", None, gated="true", limit=100).json()["items"]
    datasets = _get(catalogued, "/api/cache/repos", type="dataset", limit=100).json()["items"]
    assert {i["id"] for i in datasets} == set(DATASETS)
    for bad in ({"sort": "bogus"}, {"limit": "500"}, {"page": "0"}, {"type": "car"}, {"sizeGte": "big"}):
        r = _get(catalogued, "/api/cache/repos", **bad)
        assert r.status_code == 400 and r.headers["x-error-code"] == "BadRequest", bad


def test_jobs_and_their_models(catalogued: Catalogued, with_history: dict) -> None:
    unique = with_history["readme_repo"].split("/")[0]
    listed = _get(catalogued, "/api/jobs", limit=50).json()
    ids = [j["id"] for j in listed["items"]]
    trending_id = next(i for i in ids if i.startswith("trending-"))
    failed = next(j for j in listed["items"] if j["id"].startswith(f"sync-{unique}-failed"))
    assert failed["status"] == "failed" and failed["errors"] and failed["kind"] == "sync"
    assert listed["pagination"]["total"] >= 4 and _get(catalogued, "/api/jobs", limit=51).status_code == 400
    assert [j["id"] for j in _get(catalogued, "/api/jobs", limit=1, page=2).json()["items"]] == ids[1:2]
    gated_job = next(i for i in ids if i.startswith(f"sync-{unique}-gated"))
    detail = _get(catalogued, f"/api/jobs/{gated_job}").json()
    assert detail["status"] == "success" and [r["id"] for r in detail["repos"]] == [corpus.TRENDING_MODELS[5]]
    assert _get(catalogued, f"/api/jobs/{gated_job}", None).json()["repos"] == []  # restricted: not to anonymous
    assert _get(catalogued, "/api/jobs/nope-123").status_code == 404

    models = _get(catalogued, f"/api/jobs/{trending_id}/models", limit=50).json()
    assert [m["id"] for m in models["items"]] == [c["id"] for c in with_history["snapshot"].considered]
    by_likes = _get(catalogued, f"/api/jobs/{trending_id}/models", sort="likes").json()["items"]
    assert [m["likes"] for m in by_likes] == sorted((m["likes"] for m in by_likes), reverse=True)
    anonymous = {m["id"] for m in _get(catalogued, f"/api/jobs/{trending_id}/models", None).json()["items"]}
    assert anonymous == {c["id"] for c in with_history["snapshot"].considered if not c["gated"]}
    found = _get(catalogued, f"/api/jobs/{trending_id}/models", search="model-03").json()["items"]
    assert [m["id"] for m in found] == [corpus.TRENDING_MODELS[3]]
    small = _get(catalogued, f"/api/jobs/{trending_id}/models", sizeLte=1).json()["items"]
    assert small == []
    assert _get(catalogued, f"/api/jobs/{gated_job}/models").status_code == 400


def test_mirror_status_is_tunasync_like(catalogued: Catalogued, with_history: dict) -> None:
    status = {s["id"]: s for s in _get(catalogued, "/api/mirror/status").json()}
    ok = status[with_history["readme_repo"]]
    assert ok["status"] == "success" and ok["last_update"].endswith("Z") and ok["size_bytes"] > 70_000
    assert ok["last_started"] and ok["last_ended"] and ok["next_schedule"] and ok["upstream"] == catalogued.hub.url
    assert isinstance(ok["last_update_ts"], int) and ok["name"] == f"models/{with_history['readme_repo']}"
    failed = status[corpus.TRENDING_MODELS[0]]
    assert failed["status"] == "failed" and "no-such-branch" in failed["error"]
    anonymous = {s["id"] for s in _get(catalogued, "/api/mirror/status", None).json()}
    assert corpus.GATED_MODEL not in anonymous and corpus.TRENDING_MODELS[0] in anonymous
