"""The real huggingface_hub client downloads from the fake hub exactly as it would from the Hub.

Expected values come from the corpus's own record (`file_record`) or are recomputed here from the
downloaded bytes (sha256, git blob sha1), never from the code under test's answers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import snapshot_download

from hubmirror.demohub.corpus import (
    BRANCHY_MODEL,
    DATASET,
    LARGE_MODEL,
    MANY_FILES_COUNT,
    MANY_FILES_MODEL,
    SINGLE_SEGMENT_MODEL,
    SMALL_MODEL,
    SPACE,
    UNICODE_PATHS,
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_snapshot_download_of_2500_files_pages_the_tree(fakehub, tmp_path):
    """The whole 2,500-file tree is listed in 3 Link-paged pages and every file arrives intact."""
    fakehub.reset()
    folder = Path(snapshot_download(MANY_FILES_MODEL, endpoint=fakehub.url, cache_dir=tmp_path, token=False,
                                    max_workers=16))
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    expected = sorted(["README.md"] + [f"shard-{i // 250:02d}/part-{i // 25 % 10}/file-{i:04d}.txt"
                                       for i in range(MANY_FILES_COUNT)])
    assert MANY_FILES_COUNT == 2500 and files == expected
    for name in files[1:]:
        number = int(name[-8:-4])
        assert (folder / name).read_bytes() == b"file %d\n" % number * 3, name
    sample = "shard-07/part-3/file-1830.txt"
    record = fakehub.file_record("model", MANY_FILES_MODEL, sample)
    assert sha256_file(folder / sample) == record["sha256"]
    tree_calls = [r for r in fakehub.requests() if "/tree/" in r["path"]]
    assert len(tree_calls) >= 3, "2500 files + directories need 3 pages of 1000"
    assert all("cursor=" in r["query"] for r in tree_calls[1:])
    assert folder.name == record["commit"]


def test_lfs_download_goes_through_the_signed_cdn_redirect(fakehub, download):
    fakehub.reset()
    path = download(SMALL_MODEL, "model.safetensors")
    record = fakehub.file_record("model", SMALL_MODEL, "model.safetensors")
    assert record["lfs"] and path.stat().st_size == record["size"] > 50_000_000
    assert sha256_file(path) == record["sha256"]
    log = fakehub.requests()
    assert [(r["kind"], r["method"], r["status"]) for r in log] == [
        ("resolve", "HEAD", 302),
        ("cdn", "GET", 200),
    ]
    assert fakehub.counters()["cdn"]["bytes"] == record["size"]
    # the cache blob is named by the sha256 (X-Linked-Etag), the snapshot by X-Repo-Commit
    assert path.resolve().name == record["sha256"]
    assert path.parent.name == record["commit"]


def test_large_model_is_byte_identical(fakehub, download):
    path = download(LARGE_MODEL, "pytorch_model.bin")
    record = fakehub.file_record("model", LARGE_MODEL, "pytorch_model.bin")
    assert sha256_file(path) == record["sha256"]


def test_regular_files_are_served_directly_with_git_blob_etag(fakehub, download):
    fakehub.reset()
    for name in ("config.json", *UNICODE_PATHS):
        path = download(SMALL_MODEL, name)
        data = path.read_bytes()
        record = fakehub.file_record("model", SMALL_MODEL, name)
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert path.resolve().name == git_blob_sha1(data) == record["oid"]
    assert fakehub.counters()["cdn"]["requests"] == 0
    paths = [r["path"] for r in fakehub.requests()]
    assert "/hubmirror-test/tiny-bert/resolve/main/sub%20dir/file%20with%20space.txt" in paths


def test_single_segment_repo_space_and_dataset_routes(download):
    assert b"gpt2" in download(SINGLE_SEGMENT_MODEL, "config.json").read_bytes()
    assert b"gradio" in download(SPACE, "app.py", repo_type="space").read_bytes()
    csv = download(DATASET, "data/train.csv", repo_type="dataset")
    assert csv.read_text().splitlines()[0] == "id,text,label"


def test_parquet_convert_ref_is_downloadable(download):
    def convert(filename: str) -> Path:
        return download(DATASET, filename, repo_type="dataset", revision="refs/convert/parquet")

    table = pq.read_table(convert("default/train/0000.parquet"))
    assert table.num_rows == 20 and table.column_names == ["id", "text", "label"]
    with pytest.raises(Exception, match="Entry Not Found|EntryNotFound|404"):
        convert("data/train.csv")


def test_branches_tags_prs_and_shas_as_revisions(fakehub, download):
    refs = fakehub.repo_record("model", BRANCHY_MODEL)

    def readme(rev: str) -> str:
        return download(BRANCHY_MODEL, "README.md", revision=rev).read_text()

    assert "proposed" in readme("refs/pr/1")
    assert "branchy v1" in readme("v1.0")
    assert "branchy v1" in readme(refs["tags"]["v1.0"][:7])
    path = download(BRANCHY_MODEL, "feature.txt", revision="feature/x")
    assert path.parent.name == refs["branches"]["feature/x"]
    main_sha = refs["branches"]["main"]
    path = download(BRANCHY_MODEL, "notes/changelog.txt", revision=main_sha)
    assert path.read_bytes() == b"v3\n"
