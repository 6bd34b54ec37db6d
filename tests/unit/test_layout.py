"""Layout v1: every key is built from validated parts, and hostile parts are refused clearly."""

from datetime import UTC, datetime

import pytest

from mirror_core import layout
from mirror_core.errors import InvalidPathError, InvalidRepoIdError, InvalidRevisionError
from mirror_core.layout import RepoRef

SHA = "0123456789abcdef0123456789abcdef01234567"
SHA256 = "f" * 64


def test_keys_follow_layout_v1():
    repo = RepoRef.parse("org/model", "model")
    assert layout.refs_key(repo) == "repos/models/org/model/refs.json"
    assert layout.commit_key(repo, SHA) == f"repos/models/org/model/commits/{SHA}.json"
    assert layout.blob_key(SHA256) == f"blobs/sha256/ff/ff/{SHA256}"
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert layout.run_report_key("sync-1", when) == "state/runs/2026/03/04/sync-1.json"
    assert layout.trending_snapshot_key(when) == "state/trending/20260304T050607Z.json"
    assert layout.catalog_key(when) == "state/catalog/20260304T050607Z.sqlite"


@pytest.mark.parametrize("repo_id,type_", [("org/model", "models"), ("gpt2", "datasets"), ("a.b_c-d/x.y", "spaces")])
def test_repo_keys_round_trip(repo_id, type_):
    repo = RepoRef.parse(repo_id, type_)
    assert layout.repo_from_key(layout.refs_key(repo)) == repo
    assert layout.repo_from_key(layout.commit_key(repo, SHA)) == repo
    assert layout.sha_from_commit_key(layout.commit_key(repo, SHA)) == SHA
    assert layout.sha256_from_blob_key(layout.blob_key(SHA256)) == SHA256


def test_canonical_ids_cannot_clash_with_a_namespace():
    canonical = layout.refs_key(RepoRef.parse("gpt2"))
    assert canonical == "repos/models/~/gpt2/refs.json"
    with pytest.raises(InvalidRepoIdError):
        RepoRef.parse("~/gpt2")


@pytest.mark.parametrize("bad", [
    "", "a/b/c", "../etc", "org/..", "org/a..b", "org/-a", "org/a-", "org/a--b", "org/a b", "org/a\\b",
    "org/a\x00", "/abs", "org/", "x" * 97, "org/é",
])
def test_bad_repo_ids_are_refused_with_a_reason(bad):
    with pytest.raises(InvalidRepoIdError) as err:
        RepoRef.parse(bad)
    assert "repo id" in str(err.value)


def test_unknown_repo_type_names_the_choices():
    with pytest.raises(InvalidRepoIdError, match="model, dataset, space"):
        RepoRef.parse("org/a", "kernel")


@pytest.mark.parametrize("bad,reason", [
    ("", "empty"), ("../secret", "'..'"), ("a/../../b", "'..'"), ("/etc/passwd", "absolute"),
    ("a\\b", "backslash"), ("a\x00b", "NUL"), ("a//b", "empty"), ("./a", "'.'"), ("a/" + "x" * 256, "longer"),
    ("x/" * 600, "longer"), ("a\nb", "control"),
])
def test_bad_paths_are_refused_with_a_reason(bad, reason):
    with pytest.raises(InvalidPathError, match=reason):
        layout.validate_path(bad)


@pytest.mark.parametrize("good", ["config.json", "sub dir/file with space.txt", "données/é.txt", "a/.gitattributes"])
def test_good_paths_pass_unchanged(good):
    assert layout.validate_path(good) == good


@pytest.mark.parametrize("bad", ["", "a..b", "/main", "main/", "a b", "a~1", "x" * 256, "a//b", "a\x01"])
def test_bad_revisions_are_refused(bad):
    with pytest.raises(InvalidRevisionError):
        layout.validate_revision(bad)


@pytest.mark.parametrize("good", ["main", "refs/pr/1", "refs/convert/parquet", "feature/x", "v1.0", SHA])
def test_good_revisions_pass(good):
    assert layout.validate_revision(good) == good


def test_hashes_must_be_lowercase_hex_of_the_right_length():
    for bad in ["F" * 64, "f" * 63, "g" * 64, "../" + "f" * 61]:
        with pytest.raises(InvalidPathError, match="sha256"):
            layout.blob_key(bad)
    for bad in [SHA.upper(), SHA[:-1], "main"]:
        with pytest.raises(InvalidRevisionError, match="commit sha"):
            layout.commit_key(RepoRef.parse("a/b"), bad)


def test_run_ids_cannot_escape_their_folder():
    with pytest.raises(InvalidPathError):
        layout.run_report_key("../../blobs/x", datetime.now(UTC))
