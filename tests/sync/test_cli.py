"""`hubmirror sync | trending | status` end to end through the CLI entry point and a YAML config."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hubmirror.cli import main
from hubmirror.demohub.corpus import BRANCHY_MODEL, DATASET, GATED_MODEL, SMALL_MODEL
from mirror_core.layout import RepoRef, refs_key
from mirror_core.store import Store
from tests.sync.helpers import manifest, published_refs
from tests.unit.test_reports import SYNC_KEYS


def _config(tmp_path: Path, settings, **extra) -> str:
    data = {"upstream_url": settings.upstream_url, "upstream_token": settings.token,
            "s3_endpoint": settings.s3_endpoint, "s3_access_key": settings.s3_access_key,
            "s3_secret_key": settings.s3_secret_key.get_secret_value(), "s3_bucket": settings.s3_bucket,
            "transfer": settings.transfer.model_dump(), **extra}
    path = tmp_path / "hubmirror.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_sync_then_status(hub, make, tmp_path, capsys) -> None:
    settings = make()
    config = _config(tmp_path, settings)
    assert main(["--config", config, "sync", SMALL_MODEL]) == 0
    assert main(["--config", config, "sync", "--type", "dataset", DATASET]) == 0
    err = capsys.readouterr().err
    assert f"model:{SMALL_MODEL}" in err and "synced" in err and "2/" not in err.split("\n")[0]
    assert main(["--config", config, "status", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)["repos"]}
    store = Store(settings.s3)
    for repo in (RepoRef.parse(SMALL_MODEL), RepoRef.parse(DATASET, "dataset")):
        refs = published_refs(store, repo)
        row = rows[repo.repo_id]
        assert row["type"] == repo.singular_type and row["branches"] == refs.branches
        assert row["size"] == manifest(store, repo, refs.branches["main"]).total_size
    assert rows[DATASET]["converts"] == published_refs(store, RepoRef.parse(DATASET, "dataset")).converts
    assert main(["--config", config, "status"]) == 0
    assert SMALL_MODEL in capsys.readouterr().out


def test_status_names_a_corrupt_refs_json_and_lists_the_rest(hub, make, tmp_path, capsys) -> None:
    settings = make()
    config = _config(tmp_path, settings)
    assert main(["--config", config, "sync", SMALL_MODEL]) == 0
    broken = RepoRef.parse("hubmirror-test/broken")
    Store(settings.s3).put_bytes(refs_key(broken), b'{"branches": {}}')
    capsys.readouterr()
    main(["--config", config, "status", "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert [row["id"] for row in shown["repos"]] == [SMALL_MODEL]
    assert any(f"{refs_key(broken)} is not a valid refs.json" in p for p in shown["problems"]), shown["problems"]


def test_failures_give_one_line_each_and_nonzero_exit(hub, make, tmp_path, capsys) -> None:
    config = _config(tmp_path, make())
    code = main(["--config", config, "sync", "hubmirror-test/does-not-exist", SMALL_MODEL, "--revision", "main"])
    err = capsys.readouterr().err
    assert code == 1
    failures = [line for line in err.splitlines() if line.strip().startswith("error:")]
    assert len(failures) == 1 and "does-not-exist" in failures[0] and "not found" in failures[0]
    assert "1/2 repos ok" in err
    assert main(["--config", config, "sync"]) == 2  # nothing named: a clear usage error
    assert "REPO_ID" in capsys.readouterr().err


def test_revision_glob_under_refs_syncs_that_kind_and_a_pattern_matching_nothing_warns(hub, make, tmp_path,
                                                                                         capsys) -> None:
    settings = make()
    config = _config(tmp_path, settings)
    assert main(["--config", config, "sync", BRANCHY_MODEL, "--revision", "main", "--revision", "refs/pr/*",
                 "--revision", "refs/tags/nothing-*"]) == 0
    err = capsys.readouterr().err
    refs = published_refs(Store(settings.s3), RepoRef.parse(BRANCHY_MODEL))
    assert list(refs.pull_requests) == ["1"] and "main" in refs.branches
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: model:{BRANCHY_MODEL}: revision pattern 'refs/tags/nothing-*' matches no tags "
                        "upstream"]


def test_a_gated_repo_the_token_cannot_read_is_one_repo_level_error(hub, make, tmp_path, capsys) -> None:
    config = _config(tmp_path, make(token="no_access"))
    assert main(["--config", config, "sync", GATED_MODEL]) == 1
    failures = [line for line in capsys.readouterr().err.splitlines() if line.strip().startswith("error:")]
    assert len(failures) == 1 and "gated" in failures[0] and GATED_MODEL in failures[0], failures


def test_trending_then_sync_all(hub, make, tmp_path, capsys) -> None:
    settings = make()
    config = _config(tmp_path, settings, selection={"repos": [{"id": SMALL_MODEL, "revisions": ["main"]}],
                                                   "trending": {"models": {"top": 3}}})
    assert main(["--config", config, "trending", "--json"]) == 0
    snapshot = json.loads(capsys.readouterr().out)
    trending = [r["repo_id"] for r in snapshot["repos"]]
    assert trending
    assert main(["--config", config, "sync", "--all"]) == 0
    store = Store(settings.s3)
    for repo_id in [SMALL_MODEL, *trending]:
        assert published_refs(store, RepoRef.parse(repo_id)) is not None, repo_id
    runs = [json.loads(store.get_bytes(o.key)) for o in store.list("state/runs/")]
    whole = [r for r in runs if len(r.get("repos") or []) > 1]
    assert len(whole) == 1 and whole[0]["ok"] and SYNC_KEYS <= whole[0].keys()  # the DAG's report has this shape


def test_status_table_fits_80_columns(hub, make, tmp_path, capsys) -> None:
    config = _config(tmp_path, make())
    assert main(["--config", config, "sync", "--type", "dataset", DATASET, "--revision", "main"]) == 0
    capsys.readouterr()
    assert main(["--config", config, "status"]) == 0  # captured output: rich renders 80 columns wide
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    header = next(line for line in lines if "type" in line)
    assert all(column in header for column in ("type", "repo / refs", "size", "files", "updated"))
    assert any(DATASET in line and "kB" in line and "UTC" not in line for line in lines)  # id whole, beside size
    assert any("main=" in line and "convert:" in line for line in lines)


def test_errors_are_one_plain_line_naming_their_source(tmp_path, capsys, monkeypatch) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("selection: [unclosed\n")
    assert main(["--config", str(config), "status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: config file") and "line 2, column 1" in err
    config.write_text("transfer: {engine: '[fast]'}\n")
    monkeypatch.setenv("HUBMIRROR_S3_BUCKET", "Not_A_Bucket")
    assert main(["--config", str(config), "status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # rich neither wraps it nor eats the bracketed values below
    assert "'[fast]'" in err and f"[from config file {config}]" in err
    assert "'Not_A_Bucket'" in err and "[from environment variable HUBMIRROR_S3_BUCKET]" in err
