"""The fake hub's repositories, built deterministically from fixed seeds.

Large bodies are generated once into `<data_dir>/bodies/` (atomically, in chunks) and reused by later
sessions; everything else is rebuilt in memory at start-up in well under a second or two.
See README.md beside this file for what each repo is for.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import yaml

from hubmirror.demohub.repos import Blob, Repo, utc

SMALL_MODEL = "hubmirror-test/tiny-bert"
LARGE_MODEL = "hubmirror-test/large-model"
MANY_FILES_MODEL = "hubmirror-test/many-files"
BRANCHY_MODEL = "hubmirror-test/branchy"
GATED_MODEL = "hubmirror-test/gated-model"
PRIVATE_MODEL = "hubmirror-test/private-model"
XET_MODEL = "hubmirror-test/xet-model"
SINGLE_SEGMENT_MODEL = "tinygpt"
DATASET = "hubmirror-test/tiny-dataset"
SPACE = "hubmirror-test/tiny-space"
TRENDING_PREFIX = "hubmirror-trending"
TRENDING_MODELS = [f"{TRENDING_PREFIX}/model-{i:02d}" for i in range(32)]
TRENDING_DATASETS = [f"{TRENDING_PREFIX}/dataset-{i}" for i in range(3)]

SMALL_WEIGHTS_SIZE = 50 * 1024 * 1024
DEFAULT_LARGE_SIZE = 64 * 1024 * 1024
MANY_FILES_COUNT = 2500
UNICODE_PATHS = ("sub dir/file with space.txt", "données/é.txt")
BODIES_VERSION = 1
_GEN_CHUNK = 8 * 1024 * 1024


@dataclass
class Corpus:
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)
    _blobs: dict[str, Blob] = field(default_factory=dict, repr=False)

    def add(self, repo: Repo) -> Repo:
        self.repos[(repo.repo_type, repo.repo_id)] = repo
        return repo

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def blob(self, sha256: str) -> Blob | None:
        """Any body any commit of any repo references, by sha256 (what the CDN serves).

        Commits only ever add bodies, so a miss simply rebuilds the index once.
        """
        if sha256 not in self._blobs:
            self._blobs = {
                entry.body.sha256: entry.body
                for repo in self.repos.values()
                for commit in repo.commits.values()
                for entry in commit.files.values()
                if entry.body is not None
            }
        return self._blobs.get(sha256)


def generated_body(data_dir: Path, name: str, size: int, produce: Callable[[int], Iterator[bytes]]) -> Blob:
    """A large body on disk, generated once; the sha256 sidecar makes later sessions instant."""
    bodies = data_dir / "bodies"
    bodies.mkdir(parents=True, exist_ok=True)
    path = bodies / f"{name}-{size}-v{BODIES_VERSION}.bin"
    sidecar = path.with_suffix(".sha256")
    if path.exists() and sidecar.exists() and path.stat().st_size == size:
        return Blob(size=size, sha256=sidecar.read_text().strip(), path=path)
    digest = hashlib.sha256()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    written = 0
    with tmp.open("wb") as fh:
        for chunk in produce(size):
            digest.update(chunk)
            fh.write(chunk)
            written += len(chunk)
    if written != size:
        tmp.unlink()
        raise RuntimeError(f"generator for {name} produced {written} bytes, expected {size}")
    os.replace(tmp, path)
    tmp_sidecar = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    tmp_sidecar.write_text(digest.hexdigest())
    os.replace(tmp_sidecar, sidecar)
    return Blob(size=size, sha256=digest.hexdigest(), path=path)


def random_bytes(seed: int) -> Callable[[int], Iterator[bytes]]:
    def produce(size: int) -> Iterator[bytes]:
        rng = np.random.Generator(np.random.PCG64(seed))
        for pos in range(0, size, _GEN_CHUNK):
            yield rng.bytes(min(_GEN_CHUNK, size - pos))

    return produce


def safetensors_header(name: str, rows: int, cols: int) -> bytes:
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            name: {"dtype": "F32", "shape": [rows, cols], "data_offsets": [0, rows * cols * 4]},
        },
        separators=(",", ":"),
    ).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header


def safetensors_stream(seed: int, rows: int, cols: int) -> Callable[[int], Iterator[bytes]]:
    """A valid safetensors file: u64 header length, JSON header, then rows*cols F32 values."""

    def produce(size: int) -> Iterator[bytes]:
        yield safetensors_header("embeddings.weight", rows, cols)
        rng = np.random.Generator(np.random.PCG64(seed))
        left = rows * cols
        while left:
            n = min(left, _GEN_CHUNK // 4)
            yield rng.standard_normal(n, dtype=np.float32).tobytes()
            left -= n

    return produce


def tiny_safetensors(seed: int, rows: int = 16, cols: int = 32) -> bytes:
    return b"".join(safetensors_stream(seed, rows, cols)(0))


def readme(card: dict, body: str) -> bytes:
    return ("---\n" + yaml.safe_dump(card, sort_keys=False, allow_unicode=True) + "---\n\n" + body).encode()


def js(obj: object) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


GITATTRIBUTES = b"".join(
    f"*{ext} filter=lfs diff=lfs merge=lfs -text\n".encode()
    for ext in (".safetensors", ".bin", ".parquet", ".pt", ".h5", ".onnx")
)
WORDS = (
    "the a an of to in is was for on with as by at from this that it be are not or and but model "
    "data hub mirror test tiny fake file small large token text word sentence good bad red blue green "
    "one two three four five cat dog run walk talk read write open close day night sun moon"
).split()


def tokenizer_files() -> dict[str, bytes]:
    """A tiny WordLevel tokenizer that transformers.AutoTokenizer loads as PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    tok.add_special_tokens(specials)
    special_map = {
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "mask_token": "[MASK]",
    }
    return {
        "tokenizer.json": tok.to_str(pretty=True).encode(),
        "tokenizer_config.json": js(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": 128,
                "do_lower_case": True,
                **special_map,
            }
        ),
        "special_tokens_map.json": js(special_map),
    }


def bert_config(vocab_size: int, hidden: int = 32) -> dict:
    return {
        "architectures": ["BertForMaskedLM"],
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": hidden * 2,
        "max_position_embeddings": 128,
    }


def model_meta(card: dict, likes: int, downloads: int, trending: int) -> dict:
    tags = list(card.get("tags", []))
    for extra in (card.get("library_name"), card.get("pipeline_tag")):
        if extra and extra not in tags:
            tags.append(extra)
    if card.get("license"):
        tags.append(f"license:{card['license']}")
    return {
        "card": card,
        "tags": tags,
        "likes": likes,
        "downloads": downloads,
        "trendingScore": trending,
        "library_name": card.get("library_name"),
        "pipeline_tag": card.get("pipeline_tag"),
    }


def build_small_model(data_dir: Path) -> Repo:
    card = {
        "license": "apache-2.0",
        "library_name": "transformers",
        "pipeline_tag": "fill-mask",
        "tags": ["bert", "hubmirror-test"],
        "language": ["en"],
    }
    repo = Repo("model", SMALL_MODEL, utc(2024, 1, 1), meta=model_meta(card, 42, 1234, 7))
    rows = SMALL_WEIGHTS_SIZE // (64 * 4)
    weights = generated_body(
        data_dir,
        "tiny-bert-model-safetensors",
        len(safetensors_header("embeddings.weight", rows, 64)) + rows * 64 * 4,
        safetensors_stream(1, rows, 64),
    )
    files: dict[str, Blob | None] = {name: Blob.of(body) for name, body in tokenizer_files().items()}
    files.update(
        {
            ".gitattributes": Blob.of(GITATTRIBUTES),
            "config.json": Blob.of(js(bert_config(len(WORDS) + 5))),
            "README.md": Blob.of(readme(card, "# tiny-bert\n\nA tiny BERT for hubmirror tests.\n")),
            "model.safetensors": weights,
            UNICODE_PATHS[0]: Blob.of(b"a file whose name has spaces\n"),
            UNICODE_PATHS[1]: Blob.of("un fichier accentué\n".encode()),
        }
    )
    repo.commit(files, message="Initial commit")
    return repo


def build_large_model(data_dir: Path, large_size: int) -> Repo:
    card = {"license": "mit", "library_name": "transformers", "tags": ["hubmirror-test", "large"]}
    repo = Repo("model", LARGE_MODEL, utc(2024, 1, 2), meta=model_meta(card, 3, 10, 1))
    body = generated_body(data_dir, "large-model-bin", large_size, random_bytes(2))
    repo.commit(
        {
            ".gitattributes": Blob.of(GITATTRIBUTES),
            "config.json": Blob.of(js({"model_type": "gpt2"})),
            "README.md": Blob.of(readme(card, "# large-model\n")),
            "pytorch_model.bin": body,
        },
        message="Add large weights",
    )
    return repo


def build_many_files_model() -> Repo:
    card = {"license": "mit", "tags": ["hubmirror-test", "many-files"]}
    repo = Repo("model", MANY_FILES_MODEL, utc(2024, 1, 3), meta=model_meta(card, 1, 5, 1))
    files: dict[str, Blob | None] = {"README.md": Blob.of(readme(card, "# many-files\n"))}
    for i in range(MANY_FILES_COUNT):
        files[f"shard-{i // 250:02d}/part-{i // 25 % 10}/file-{i:04d}.txt"] = Blob.of(
            f"file {i}\n".encode() * 3
        )
    repo.commit(files, message="Add 2500 files")
    return repo


def build_branchy_model() -> Repo:
    """main: 3 commits; dev and feature/x branch off; tag v1.0 on the first; refs/pr/1."""
    card = {"license": "mit", "library_name": "transformers", "tags": ["hubmirror-test"]}
    repo = Repo("model", BRANCHY_MODEL, utc(2024, 2, 1), meta=model_meta(card, 2, 20, 1))
    first = repo.commit(
        {
            "README.md": Blob.of(readme(card, "# branchy v1\n")),
            "config.json": Blob.of(js({"model_type": "bert", "version": 1})),
            "weights.bin": Blob.of(b"weights-v1" * 100),
        },
        message="Initial commit",
    )
    repo.tags["v1.0"] = first.sha
    repo.commit(
        {"config.json": Blob.of(js({"model_type": "bert", "version": 2}))}, message="Bump config to v2"
    )
    repo.commit(
        {"weights.bin": Blob.of(b"weights-v3" * 100), "notes/changelog.txt": Blob.of(b"v3\n")},
        message="New weights\n\nRetrained on more data.",
    )
    repo.commit({"dev.txt": Blob.of(b"dev only\n")}, branch="dev", message="Start dev branch")
    repo.commit({"feature.txt": Blob.of(b"feature\n")}, branch="feature/x", message="Feature branch")
    pr = repo.commit(
        {"README.md": Blob.of(readme(card, "# branchy, proposed README\n"))},
        branch="__pr1",
        parent_rev=first.sha,
        message="Proposed README change",
    )
    del repo.branches["__pr1"]
    repo.pull_requests["1"] = pr.sha
    return repo


def build_gated_and_private() -> list[Repo]:
    out = []
    for repo_id, gated, private in ((GATED_MODEL, "manual", False), (PRIVATE_MODEL, False, True)):
        card = {"license": "other", "library_name": "transformers", "tags": ["hubmirror-test"]}
        repo = Repo(
            "model", repo_id, utc(2024, 3, 1), meta=model_meta(card, 5, 50, 2), gated=gated, private=private
        )
        repo.commit(
            {
                "README.md": Blob.of(readme(card, f"# {repo_id}\n")),
                "config.json": Blob.of(js({"model_type": "bert"})),
                "model.safetensors": Blob.of(tiny_safetensors(3)),
            },
            message="Initial commit",
        )
        out.append(repo)
    return out


def build_xet_model() -> Repo:
    card = {"license": "mit", "library_name": "transformers", "tags": ["hubmirror-test", "xet"]}
    repo = Repo("model", XET_MODEL, utc(2024, 3, 2), meta=model_meta(card, 1, 1, 1), xet=True)
    repo.commit(
        {
            "README.md": Blob.of(readme(card, "# xet-model\n")),
            "config.json": Blob.of(js({"model_type": "bert"})),
            "model.safetensors": Blob.of(tiny_safetensors(4, rows=64, cols=64)),
        },
        message="Initial commit",
    )
    return repo


def build_single_segment_model() -> Repo:
    card = {"license": "mit", "library_name": "transformers", "pipeline_tag": "text-generation"}
    repo = Repo("model", SINGLE_SEGMENT_MODEL, utc(2023, 6, 1), meta=model_meta(card, 100, 100000, 3))
    repo.commit(
        {
            "README.md": Blob.of(readme(card, "# tinygpt\n")),
            "config.json": Blob.of(js({"model_type": "gpt2"})),
            "model.safetensors": Blob.of(tiny_safetensors(5)),
        },
        message="Initial commit",
    )
    return repo


def _rows(split: str, n: int) -> list[dict]:
    return [
        {"id": i, "text": f"{split} sentence {i} " + WORDS[i % len(WORDS)], "label": i % 2} for i in range(n)
    ]


def _csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


def build_dataset() -> Repo:
    card = {
        "license": "cc-by-4.0",
        "language": ["en"],
        "task_categories": ["text-classification"],
        "tags": ["hubmirror-test"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": "train", "path": "data/train.csv"},
                    {"split": "test", "path": "data/test.csv"},
                ],
            },
            {
                "config_name": "parquet",
                "data_files": [{"split": "train", "path": "parquet/train-00000-of-00001.parquet"}],
            },
        ],
    }
    meta = {
        "card": card,
        "tags": ["hubmirror-test", "language:en", "license:cc-by-4.0", "format:csv"],
        "likes": 9,
        "downloads": 99,
        "trendingScore": 4,
        "description": "A tiny dataset for hubmirror tests.",
    }
    repo = Repo("dataset", DATASET, utc(2024, 1, 5), meta=meta)
    train, test = _rows("train", 20), _rows("test", 10)
    train_parquet = _parquet(train)
    main = repo.commit(
        {
            ".gitattributes": Blob.of(GITATTRIBUTES),
            "README.md": Blob.of(readme(card, "# tiny-dataset\n")),
            "data/train.csv": Blob.of(_csv(train)),
            "data/test.csv": Blob.of(_csv(test)),
            "parquet/train-00000-of-00001.parquet": Blob.of(train_parquet),
        },
        message="Add data",
    )
    convert = repo.commit(
        {
            ".gitattributes": Blob.of(GITATTRIBUTES),
            "default/train/0000.parquet": Blob.of(train_parquet),
            "default/test/0000.parquet": Blob.of(_parquet(test)),
            "parquet/train/0000.parquet": Blob.of(train_parquet),
        },
        branch="__convert",
        parent_rev=main.sha,
        replace=True,
        author="parquet-converter",
        message="Update parquet files",
    )
    del repo.branches["__convert"]
    repo.converts["parquet"] = convert.sha
    return repo


def build_space() -> Repo:
    card = {
        "title": "Tiny Space",
        "sdk": "gradio",
        "sdk_version": "4.0.0",
        "app_file": "app.py",
        "tags": ["hubmirror-test"],
    }
    meta = {
        "card": card,
        "tags": ["gradio", "hubmirror-test"],
        "likes": 6,
        "trendingScore": 5,
        "sdk": "gradio",
    }
    repo = Repo("space", SPACE, utc(2024, 1, 6), meta=meta)
    repo.commit(
        {
            "README.md": Blob.of(readme(card, "# Tiny Space\n")),
            "app.py": Blob.of(b"import gradio as gr\n\ngr.Interface(lambda x: x, 'text', 'text').launch()\n"),
            "requirements.txt": Blob.of(b"gradio\n"),
        },
        message="Initial commit",
    )
    return repo


PIPELINES = ("text-generation", "fill-mask", "text-classification", "token-classification")
LIBRARIES = ("transformers", "sentence-transformers", "transformers", "timm")


def build_trending() -> list[Repo]:
    """32 small models + 3 datasets with distinct trendingScore/likes/downloads; 1 in 8 gated."""
    out = []
    for i, repo_id in enumerate(TRENDING_MODELS):
        card = {
            "license": "apache-2.0",
            "library_name": LIBRARIES[i % 4],
            "pipeline_tag": PIPELINES[i % 4],
            "tags": ["hubmirror-trending", f"group-{i % 3}"],
        }
        meta = model_meta(
            card,
            likes=(i * 7 % 32) * 5 + 3,
            downloads=(i * 11 % 32) * 1000 + 17,
            trending=1000 - (i * 13 % 32) * 17,
        )
        gated = "manual" if i % 8 == 5 else "auto" if i % 8 == 7 else False
        repo = Repo("model", repo_id, utc(2024, 4, 1) + timedelta(days=i), meta=meta, gated=gated)
        repo.commit(
            {
                "README.md": Blob.of(readme(card, f"# model-{i:02d}\n")),
                "config.json": Blob.of(js({"model_type": "bert", "seed": i})),
                "model.safetensors": Blob.of(tiny_safetensors(100 + i)),
            },
            message="Initial commit",
        )
        out.append(repo)
    for i, repo_id in enumerate(TRENDING_DATASETS):
        card = {"license": "mit", "tags": ["hubmirror-trending"]}
        meta = {
            "card": card,
            "tags": ["hubmirror-trending", "format:csv"],
            "likes": 10 + i,
            "downloads": 100 * i,
            "trendingScore": 50 - i * 10,
        }
        repo = Repo("dataset", repo_id, utc(2024, 5, 1) + timedelta(days=i), meta=meta)
        repo.commit(
            {
                "README.md": Blob.of(readme(card, f"# dataset-{i}\n")),
                "data.csv": Blob.of(_csv(_rows(f"d{i}", 5))),
            },
            message="Initial commit",
        )
        out.append(repo)
    return out


def build_corpus(data_dir: Path, large_size: int = DEFAULT_LARGE_SIZE) -> Corpus:
    corpus = Corpus()
    for repo in (
        build_small_model(data_dir),
        build_large_model(data_dir, large_size),
        build_many_files_model(),
        build_branchy_model(),
        *build_gated_and_private(),
        build_xet_model(),
        build_single_segment_model(),
        build_dataset(),
        build_space(),
        *build_trending(),
    ):
        corpus.add(repo)
    return corpus
