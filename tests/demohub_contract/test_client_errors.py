"""The real client raises the same typed errors against the fake hub as against the Hub (contract §7)."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hubmirror.demohub.corpus import BRANCHY_MODEL, GATED_MODEL, PRIVATE_MODEL, SMALL_MODEL


def test_gated_repo_needs_the_service_token(fakehub, download):
    with pytest.raises(GatedRepoError) as anonymous:
        download(GATED_MODEL, "config.json")
    assert anonymous.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as denied:
        download(GATED_MODEL, "model.safetensors", token=fakehub.tokens["no_access"])
    assert denied.value.response.status_code == 403
    path = download(GATED_MODEL, "model.safetensors", token=fakehub.tokens["service"])
    assert path.stat().st_size == fakehub.file_record("model", GATED_MODEL, "model.safetensors")["size"] > 8
    # like the Hub: a gated repo's metadata is public, its files are not
    assert HfApi(endpoint=fakehub.url, token=False).model_info(GATED_MODEL).gated == "manual"
    with pytest.raises(GatedRepoError):
        HfApi(endpoint=fakehub.url, token=False).auth_check(GATED_MODEL)
    HfApi(endpoint=fakehub.url, token=fakehub.tokens["service"]).auth_check(GATED_MODEL)


def test_private_repo_is_not_found_without_access(fakehub, download):
    for token in (False, fakehub.tokens["no_access"]):
        api = HfApi(endpoint=fakehub.url, token=token)
        with pytest.raises(RepositoryNotFoundError) as err:
            api.model_info(PRIVATE_MODEL)
        assert not isinstance(err.value, GatedRepoError)
        assert err.value.response.status_code == (401 if token is False else 404)
        assert api.repo_exists(PRIVATE_MODEL) is False
        with pytest.raises(RepositoryNotFoundError):
            download(PRIVATE_MODEL, "config.json", token=token)
    service = HfApi(endpoint=fakehub.url, token=fakehub.tokens["service"])
    assert service.model_info(PRIVATE_MODEL).private is True
    assert b'"bert"' in download(PRIVATE_MODEL, "config.json", token=fakehub.tokens["service"]).read_bytes()


def test_missing_repo_revision_and_entry(fakehub, download):
    api = HfApi(endpoint=fakehub.url, token=False)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("hubmirror-test/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("no-such-single-segment")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(SMALL_MODEL, revision="nope")
    with pytest.raises(RevisionNotFoundError):
        download(SMALL_MODEL, "config.json", revision="0" * 40)
    assert api.revision_exists(BRANCHY_MODEL, "dev") and not api.revision_exists(BRANCHY_MODEL, "nope")
    with pytest.raises(EntryNotFoundError):
        download(SMALL_MODEL, "no-such-file.txt")
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(SMALL_MODEL, path_in_repo="no-such-dir"))
    assert api.file_exists(SMALL_MODEL, "config.json") and not api.file_exists(SMALL_MODEL, "nope.json")


def test_entry_not_found_carries_the_commit_for_the_no_exist_cache(fakehub):
    r = httpx.head(f"{fakehub.url}/{SMALL_MODEL}/resolve/main/tokenizer.model")
    assert (r.status_code, r.headers["x-error-code"]) == (404, "EntryNotFound")
    assert r.headers["x-repo-commit"] == fakehub.repo_record("model", SMALL_MODEL)["branches"]["main"]


def test_an_unknown_token_is_rejected(fakehub):
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=fakehub.url, token="hf_not_a_real_token").model_info(SMALL_MODEL)
    assert err.value.response.status_code == 401
