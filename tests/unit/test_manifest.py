"""Manifests and refs: strict round-trips and HF revision resolution."""

import pytest
from pydantic import ValidationError

from mirror_core.manifest import CommitManifest, FileEntry, LfsInfo, Refs, hf_date, ref_kind, resolve_short_sha

A, B, C = "a" * 40, "b" * 40, "abcdef0" + "1" * 33


def manifest(**overrides) -> CommitManifest:
    values = dict(
        repo_type="models", repo_id="org/m", sha=A, upstream="https://huggingface.co",
        info={"id": "org/m", "sha": A},
        files=[FileEntry(path="config.json", size=2, sha256="1" * 64, oid="2" * 40),
               FileEntry(path="w.bin", size=9, sha256="3" * 64, oid="4" * 40, lfs=LfsInfo(pointer_size=130))],
    )
    values.update(overrides)
    return CommitManifest(**values)


def test_manifest_round_trips_and_knows_its_etags():
    m = manifest()
    again = CommitManifest.from_json(m.to_json())
    assert again == m
    assert again.file("config.json").etag == "2" * 40  # git blob sha1 for regular files
    assert again.file("w.bin").etag == "3" * 64  # sha256 for LFS files
    assert again.total_size == 11
    assert again.repo.repo_id == "org/m"


@pytest.mark.parametrize("field,value", [
    ("sha", "main"), ("repo_type", "model"),
    ("files", [{"path": "../x", "size": 1, "sha256": "1" * 64, "oid": "2" * 40}]),
    ("files", [{"path": "x", "size": -1, "sha256": "1" * 64, "oid": "2" * 40}]),
    ("files", [{"path": "x", "size": 1, "sha256": "nothex", "oid": "2" * 40}]),
])
def test_malformed_manifests_are_rejected(field, value):
    with pytest.raises(ValidationError):
        manifest(**{field: value})


def test_unknown_fields_are_rejected_so_a_newer_layout_fails_loudly():
    data = manifest().model_dump()
    data["surprise"] = 1
    with pytest.raises(ValidationError):
        CommitManifest.model_validate(data)


def test_refs_resolve_like_the_hub():
    refs = Refs(upstream="u", branches={"main": A, "feature/x": C}, tags={"v1.0": B},
                converts={"parquet": B}, pull_requests={"1": C})
    assert refs.resolve("main") == A
    assert refs.resolve("refs/heads/main") == A
    assert refs.resolve("feature/x") == C
    assert refs.resolve("v1.0") == B
    assert refs.resolve("refs/tags/v1.0") == B
    assert refs.resolve("refs/convert/parquet") == B
    assert refs.resolve("refs/pr/1") == C
    assert refs.resolve("abcdef0") == C  # short sha of a published commit
    assert refs.resolve(A) == A
    assert refs.resolve("nope") is None
    assert refs.resolve("refs/pr/2") is None


def test_short_sha_must_be_unambiguous():
    assert resolve_short_sha("ab", {"ab" + "0" * 38, "ab" + "1" * 38}) is None
    assert resolve_short_sha("ab0", {"ab" + "0" * 38, "ab" + "1" * 38}) == "ab" + "0" * 38


def test_with_ref_copies_and_validates():
    refs = Refs(upstream="u")
    updated = refs.with_ref("tags", "v2", B)
    assert refs.tags == {} and updated.tags == {"v2": B}
    with pytest.raises(Exception, match="commit sha"):
        refs.with_ref("branches", "main", "nope")
    assert Refs.from_json(updated.to_json()) == updated


def test_ref_kind_and_dates():
    assert ref_kind("refs/convert/parquet") == ("converts", "parquet")
    assert ref_kind("refs/pr/3") == ("pull_requests", "3")
    assert ref_kind("dev") == ("branches", "dev")
    from datetime import UTC, datetime
    assert hf_date(datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)) == "2024-01-02T03:04:05.678Z"


def test_default_revision_is_main_then_first_ref_by_kind_and_name():
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    assert Refs(upstream="u", branches={"dev": a, "main": b}).default_revision() == ("main", b)
    assert Refs(upstream="u", branches={"zeta": a, "beta": b}, tags={"v1": c}).default_revision() == ("beta", b)
    assert Refs(upstream="u", tags={"v2": a, "v1": c}).default_revision() == ("v1", c)
    assert Refs(upstream="u", converts={"parquet": a}).default_revision() == ("parquet", a)
    assert Refs(upstream="u").default_revision() is None


def test_restricted_is_unknown_until_recorded():
    assert Refs(upstream="u").restricted is None
    assert Refs(upstream="u", private=False, gated=False).restricted is False
    assert Refs(upstream="u", private=False, gated="manual").restricted is True
    assert Refs(upstream="u", private=True, gated=False).restricted is True


def test_a_malformed_stored_object_is_a_storage_error_naming_its_key():
    from mirror_core.errors import CorruptObjectError, StorageError

    with pytest.raises(CorruptObjectError, match=r"repos/models/o/m/refs.json is not a valid refs.json: upstream"):
        Refs.from_json(b'{"branches": {}}', "repos/models/o/m/refs.json")
    with pytest.raises(StorageError, match="is not a valid manifest"):
        CommitManifest.from_json(b"not json")
