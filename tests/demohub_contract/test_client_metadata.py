"""HfApi metadata calls against the fake hub: info, tree paging, refs, commits, search, whoami."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.hf_api import RepoFile, RepoFolder

from hubmirror.demohub.corpus import (
    BRANCHY_MODEL,
    DATASET,
    MANY_FILES_COUNT,
    MANY_FILES_MODEL,
    PRIVATE_MODEL,
    SMALL_MODEL,
    SPACE,
    TRENDING_DATASETS,
    TRENDING_MODELS,
    TRENDING_PREFIX,
    UNICODE_PATHS,
)


@pytest.fixture
def api(fakehub) -> HfApi:
    fakehub.reset()
    yield HfApi(endpoint=fakehub.url, token=False)
    fakehub.reset()


def test_model_info_with_files_metadata_matches_the_corpus(api, fakehub):
    info = api.model_info(SMALL_MODEL, files_metadata=True, securityStatus=True)
    truth = fakehub.repo_record("model", SMALL_MODEL)
    assert info.sha == truth["branches"]["main"]
    assert {s.rfilename for s in info.siblings} == set(truth["files"])
    for s in info.siblings:
        record = truth["files"][s.rfilename]
        assert (s.size, s.blob_id) == (record["size"], record["oid"])
        assert (s.lfs.sha256 if s.lfs else None) == (record["sha256"] if record["lfs"] else None)
    assert (
        info.siblings[[s.rfilename for s in info.siblings].index("model.safetensors")].lfs.pointer_size > 100
    )
    assert info.config["model_type"] == "bert" and info.pipeline_tag == "fill-mask"
    assert info.card_data["library_name"] == "transformers"
    assert info.last_modified.tzinfo is not None and info.security_repo_status["scansDone"] is True
    assert [sorted(r["query"].split("&")) for r in fakehub.requests()] == [
        ["blobs=true", "securityStatus=true"]
    ]


def test_expand_returns_only_the_requested_keys(api, fakehub):
    info = api.model_info(SMALL_MODEL, expand=["sha", "lastModified"])
    assert info.sha == fakehub.repo_record("model", SMALL_MODEL)["branches"]["main"]
    assert info.last_modified is not None and info.likes is None and info.siblings is None
    body = httpx.get(
        f"{fakehub.url}/api/models/{SMALL_MODEL}", params=[("expand", "sha"), ("expand", "likes")]
    ).json()
    assert set(body) == {"_id", "id", "sha", "likes"}


def test_dataset_and_space_info_and_revisions(api, fakehub):
    refs = fakehub.repo_record("dataset", DATASET)
    info = api.dataset_info(DATASET, revision="refs/convert/parquet")
    assert info.sha == refs["converts"]["parquet"]
    assert "/api/datasets/hubmirror-test/tiny-dataset/revision/refs%2Fconvert%2Fparquet" in [
        r["path"] for r in fakehub.requests()
    ]
    assert api.space_info(SPACE).sdk == "gradio"
    branchy = fakehub.repo_record("model", BRANCHY_MODEL)
    assert api.model_info(BRANCHY_MODEL, revision="refs/pr/1").sha == branchy["pull_requests"]["1"]
    assert api.model_info(BRANCHY_MODEL, revision="feature/x").sha == branchy["branches"]["feature/x"]
    assert api.model_info(BRANCHY_MODEL, revision=branchy["tags"]["v1.0"][:8]).sha == branchy["tags"]["v1.0"]


def test_recursive_tree_is_paged_with_absolute_links(api, fakehub):
    entries = list(api.list_repo_tree(MANY_FILES_MODEL, recursive=True))
    files = [e for e in entries if isinstance(e, RepoFile)]
    folders = [e for e in entries if isinstance(e, RepoFolder)]
    assert len(files) == MANY_FILES_COUNT + 1 and len(folders) == 10 + 100
    assert len({e.path for e in entries}) == len(entries)
    pages = [r for r in fakehub.requests() if "/tree/" in r["path"]]
    assert len(pages) == 3 and all(r["status"] == 200 for r in pages)


def test_tree_of_a_quoted_subfolder_with_expand(api, fakehub):
    entries = list(api.list_repo_tree(MANY_FILES_MODEL, path_in_repo="shard-01/part-2", expand=True))
    assert [e.path for e in entries] == [f"shard-01/part-2/file-{i:04d}.txt" for i in range(300, 325)]
    assert all(e.last_commit and len(e.last_commit.oid) == 40 for e in entries)
    paths = [r["path"] for r in fakehub.requests() if "/tree/" in r["path"]]
    assert paths[0] == f"/api/models/{MANY_FILES_MODEL}/tree/main/shard-01%2Fpart-2"
    assert len(paths) == 1
    fakehub.reset()
    assert (
        len(list(api.list_repo_tree(MANY_FILES_MODEL, path_in_repo="shard-01", recursive=True, expand=True)))
        == 260
    )
    assert len([r for r in fakehub.requests() if "/tree/" in r["path"]]) == 6  # 50 per page with expand


def test_unicode_paths_in_tree_and_paths_info(api):
    names = {e.path for e in api.list_repo_tree(SMALL_MODEL, recursive=True)}
    assert set(UNICODE_PATHS) <= names and {"sub dir", "données"} <= names
    infos = api.get_paths_info(SMALL_MODEL, ["config.json", "sub dir", "model.safetensors", "missing.txt"])
    kinds = {i.path: type(i).__name__ for i in infos}
    assert kinds == {"config.json": "RepoFile", "sub dir": "RepoFolder", "model.safetensors": "RepoFile"}
    lfs = next(i for i in infos if i.path == "model.safetensors")
    assert lfs.lfs is not None and lfs.size == lfs.lfs.size > 50_000_000


def test_refs_and_commits(api, fakehub):
    refs = api.list_repo_refs(BRANCHY_MODEL, include_pull_requests=True)
    truth = fakehub.repo_record("model", BRANCHY_MODEL)
    assert {b.name: b.target_commit for b in refs.branches} == truth["branches"]
    assert {t.name: t.target_commit for t in refs.tags} == truth["tags"]
    assert [(p.ref, p.target_commit) for p in refs.pull_requests] == [
        ("refs/pr/1", truth["pull_requests"]["1"])
    ]
    assert api.list_repo_refs(DATASET, repo_type="dataset").converts[0].ref == "refs/convert/parquet"
    fakehub.configure(commits_page_size=2)
    commits = api.list_repo_commits(BRANCHY_MODEL, formatted=True)
    assert [c.title for c in commits] == ["New weights", "Bump config to v2", "Initial commit"]
    assert (
        commits[0].commit_id == truth["branches"]["main"] and commits[-1].commit_id == truth["tags"]["v1.0"]
    )
    assert commits[0].message == "Retrained on more data."
    assert len([r for r in fakehub.requests() if "/commits/" in r["path"]]) == 2


def test_list_models_sorted_by_trending_score(api, fakehub):
    models = list(
        api.list_models(author=TRENDING_PREFIX, sort="trending_score", expand=["trendingScore", "gated"])
    )
    assert sorted(m.id for m in models) == sorted(TRENDING_MODELS)
    scores = [m.trending_score for m in models]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    assert sum(bool(m.gated) for m in models) == 8
    top5 = list(api.list_models(author=TRENDING_PREFIX, sort="trending_score", limit=5))
    assert [m.id for m in top5] == [m.id for m in models[:5]]
    fakehub.reset()
    fakehub.configure(list_page_size=10)
    paged = list(api.list_models(author=TRENDING_PREFIX, sort="likes"))
    likes = [m.likes for m in paged]
    assert len(paged) == 32 and likes == sorted(likes, reverse=True)
    assert len([r for r in fakehub.requests() if r["path"] == "/api/models"]) == 4


def test_list_filters_and_datasets(api):
    assert {m.id for m in api.list_models(filter="group-1", author=TRENDING_PREFIX)} == {
        TRENDING_MODELS[i] for i in range(32) if i % 3 == 1
    }
    assert [m.id for m in api.list_models(search="tiny-bert")] == [SMALL_MODEL]
    assert all(m.pipeline_tag == "fill-mask" for m in api.list_models(pipeline_tag="fill-mask"))
    datasets = list(api.list_datasets(author=TRENDING_PREFIX, sort="trending_score"))
    assert [d.id for d in datasets] == TRENDING_DATASETS
    full = next(iter(api.list_models(search="tiny-bert", full=True)))
    assert full.sha and full.siblings


def test_whoami_and_private_listing(fakehub):
    service = HfApi(endpoint=fakehub.url, token=fakehub.tokens["service"])
    assert service.whoami()["name"] == "hubmirror-service"
    assert HfApi(endpoint=fakehub.url, token=fakehub.tokens["no_access"]).whoami()["orgs"][0]["name"]
    assert PRIVATE_MODEL in {m.id for m in service.list_models(author="hubmirror-test")}
    assert PRIVATE_MODEL not in {
        m.id for m in HfApi(endpoint=fakehub.url, token=False).list_models(author="hubmirror-test")
    }
