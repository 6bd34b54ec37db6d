"""Trending refresh and selection: filters honoured, gated repos only with a token that can read them."""

from __future__ import annotations

from huggingface_hub import HfApi

from hubmirror.demohub.corpus import SMALL_MODEL, TRENDING_PREFIX
from mirror_core.layout import TRENDING_LATEST
from mirror_core.selection import plan
from mirror_core.store import Store
from mirror_core.trending import refresh_trending

TOP = 16


def _top(hub, kind: str = "models") -> list:
    api = HfApi(endpoint=hub.url, token=hub.tokens["service"])
    lister = api.list_models if kind == "models" else api.list_datasets
    return list(lister(sort="trending_score", limit=TOP, full=True))


def _selected(snapshot) -> list[str]:
    return [p.repo_id for p in snapshot.repos]


def test_trending_filters_tags_libraries_and_gating(hub, make) -> None:
    rules = {"top": TOP, "libraries": ["transformers"], "exclude_tags": ["group-1"]}
    settings = make(selection={"trending": {"models": rules}})
    store = Store(settings.s3)
    snapshot = refresh_trending(settings, store)
    top = _top(hub)
    expected = [m.id for m in top if m.library_name == "transformers" and "group-1" not in m.tags and not m.gated]
    assert expected and _selected(snapshot) == expected
    assert len(snapshot.considered) == len(top)
    rejected = [c for c in snapshot.considered if not c["selected"]]
    assert rejected and all(c["reason"] for c in rejected)
    assert store.get_json(TRENDING_LATEST) == store.get_json(snapshot.key) == snapshot.to_dict()


def test_gated_trending_repos_need_a_token_that_reads_them(hub, make) -> None:
    rules = {"top": TOP, "include_gated": True, "tags": [TRENDING_PREFIX]}
    top = _top(hub)
    gated = [m.id for m in top if m.gated]
    assert gated
    with_access = refresh_trending(make(selection={"trending": {"models": rules}}), Store(make().s3))
    assert set(gated) <= set(_selected(with_access))
    settings = make(token="no_access", selection={"trending": {"models": rules}})
    without = refresh_trending(settings, Store(settings.s3))
    assert not set(gated) & set(_selected(without))
    assert _selected(without) == [m.id for m in top if not m.gated and TRENDING_PREFIX in m.tags]
    reasons = {c["id"]: c["reason"] for c in without.considered}
    assert all("cannot read" in reasons[g] for g in gated)


def test_trending_size_cap(hub, make) -> None:
    api = HfApi(endpoint=hub.url, token=hub.tokens["service"])
    sizes = {m.id: sum(s.size for s in api.model_info(m.id, files_metadata=True).siblings)
             for m in _top(hub) if not m.gated}
    cap = sorted(sizes.values())[len(sizes) // 2]
    settings = make(selection={"trending": {"models": {"top": TOP, "max_total_size": cap}}})
    snapshot = refresh_trending(settings, Store(settings.s3))
    assert set(_selected(snapshot)) == {repo_id for repo_id, size in sizes.items() if size <= cap}
    assert 0 < len(snapshot.repos) < len(sizes)


def test_datasets_trending_and_plan_merges_config_first(hub, make) -> None:
    trending_model = _top(hub)[0].id
    selection = {"repos": [{"id": SMALL_MODEL}, {"id": trending_model, "revisions": ["main", "v*"]}],
                 "trending": {"models": {"top": 4}, "datasets": {"top": 2}}}
    settings = make(selection=selection)
    store = Store(settings.s3)
    assert [p.repo_id for p in plan(settings, store)] == [SMALL_MODEL, trending_model]  # no snapshot yet
    snapshot = refresh_trending(settings, store)
    datasets = [p for p in snapshot.repos if p.repo_type == "datasets"]
    assert [p.repo_id for p in datasets] == [d.id for d in _top(hub, "datasets")[:2]]
    plans = plan(settings, store)
    ids = [(p.repo_type, p.repo_id) for p in plans]
    assert len(ids) == len(set(ids))
    assert plans[0].repo_id == SMALL_MODEL and plans[1].revisions == ["main", "v*"] and plans[1].source == "config"
    assert {(p.repo_type, p.repo_id) for p in snapshot.repos} <= set(ids)


def test_demo_config_selects_the_fake_hubs_trending_repos(hub, make, tmp_path) -> None:
    import yaml

    from hubmirror.stack import _demo_config

    demo = yaml.safe_load(_demo_config(tmp_path).read_text())
    settings = make(selection=demo["selection"])
    snapshot = refresh_trending(settings, Store(settings.s3))
    top = _top(hub)
    expected = [m.id for m in top[:8] if not m.gated]
    assert expected and [p.repo_id for p in snapshot.repos if p.repo_type == "models"] == expected
    assert [p.repo_id for p in snapshot.repos if p.repo_type == "datasets"] == [d.id for d in _top(hub, "datasets")[:2]]
    assert all("gated" in c["reason"] for c in snapshot.considered if not c["selected"])
