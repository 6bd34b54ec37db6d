"""transformers and datasets load from the mirror (one subprocess each way: they are slow to import),
then again with HF_HUB_OFFLINE=1 from the cache that download left behind."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from huggingface_hub import HfApi

from hubmirror.demohub import corpus
from tests.serve.conftest import Synced
from tests.serve.server import ServeProcess, run_client

LOAD_ALL = r'''
import json, os, sys
small, dataset, offline = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
from transformers import AutoConfig, AutoTokenizer
import datasets
from huggingface_hub import hf_hub_download, snapshot_download
out = {}
cfg = AutoConfig.from_pretrained(small)
tok = AutoTokenizer.from_pretrained(small)
out["model_type"] = cfg.model_type
out["vocab_size"] = tok.vocab_size
out["ids"] = tok("hello world")["input_ids"]
csv_ds = datasets.load_dataset(dataset)
out["csv_rows"] = {split: csv_ds[split].num_rows for split in csv_ds}
out["csv_first"] = {k: str(v) for k, v in csv_ds["train"][0].items()}
out["snapshot_files"] = sorted(os.listdir(snapshot_download(small)))
out["config_path"] = os.path.basename(hf_hub_download(small, "config.json"))
if not offline:  # hf:// paths go through HfFileSystem, which needs the network by design
    # The converted parquet export at the refs/convert/parquet revision.
    parquet_files = {"train": "hf://datasets/" + dataset + "@refs/convert/parquet/default/train/0000.parquet"}
    out["parquet_rows"] = datasets.load_dataset("parquet", data_files=parquet_files)["train"].num_rows
    stream = datasets.load_dataset(dataset, split="train", streaming=True)
    out["stream_first"] = {k: str(v) for k, v in next(iter(stream)).items()}
    stream_pq = datasets.load_dataset("parquet", data_files=parquet_files, split="train", streaming=True)
    out["stream_parquet_count"] = sum(1 for _ in stream_pq)
print(json.dumps(out))
'''


def test_transformers_and_datasets_online_then_offline(synced: Synced, serve_proxy: ServeProcess,
                                                       tmp_path: Path) -> None:
    home = tmp_path / "hf"
    args = [corpus.SMALL_MODEL, corpus.DATASET]
    online = run_client(LOAD_ALL, serve_proxy.url, home, args=[*args, "0"], timeout=400)

    up = HfApi(endpoint=synced.hub.url, token=synced.hub.tokens["service"])

    def upstream_bytes(repo_id: str, path: str, repo_type: str = "model") -> bytes:
        local = up.hf_hub_download(repo_id, path, repo_type=repo_type, cache_dir=tmp_path / "upstream")
        return Path(local).read_bytes()

    config = json.loads(upstream_bytes(corpus.SMALL_MODEL, "config.json"))
    assert online["model_type"] == config["model_type"]
    vocab = json.loads(upstream_bytes(corpus.SMALL_MODEL, "tokenizer.json"))["model"]["vocab"]
    assert online["vocab_size"] == len(vocab)
    train = list(csv.DictReader(io.StringIO(upstream_bytes(corpus.DATASET, "data/train.csv", "dataset").decode())))
    test = list(csv.DictReader(io.StringIO(upstream_bytes(corpus.DATASET, "data/test.csv", "dataset").decode())))
    assert online["csv_rows"] == {"train": len(train), "test": len(test)}
    assert online["csv_first"] == train[0]
    assert online["parquet_rows"] == len(train)
    assert online["stream_first"] == train[0]
    assert online["stream_parquet_count"] == len(train)
    assert "model.safetensors" in online["snapshot_files"]

    offline = run_client(LOAD_ALL, serve_proxy.url, home, args=[*args, "1"], timeout=400,
                         extra_env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    for key in ("model_type", "vocab_size", "ids", "csv_rows", "csv_first", "snapshot_files",
                "config_path"):
        assert offline[key] == online[key], key
