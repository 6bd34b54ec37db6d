"""Higher-level libraries (transformers, datasets) load corpus repos from the fake hub.

They read HF_ENDPOINT at import time, so each runs in a subprocess pointed at the fake hub.
"""

from __future__ import annotations

import json
import subprocess
import sys

from hubmirror.demohub.corpus import DATASET, SMALL_MODEL, WORDS


def run_client(fakehub, tmp_path, code: str) -> dict:
    env = {
        "HF_ENDPOINT": fakehub.url,
        "HF_HOME": str(tmp_path),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "PATH": "/usr/bin:/bin",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_transformers_loads_the_tokenizer_and_safetensors_is_valid(fakehub, tmp_path):
    code = (
        "import json, sys\n"
        "from transformers import AutoConfig, AutoTokenizer\n"
        "from safetensors import safe_open\n"
        "from huggingface_hub import hf_hub_download\n"
        f"tok = AutoTokenizer.from_pretrained({SMALL_MODEL!r})\n"
        f"cfg = AutoConfig.from_pretrained({SMALL_MODEL!r})\n"
        f"path = hf_hub_download({SMALL_MODEL!r}, 'model.safetensors')\n"
        "with safe_open(path, 'np') as f:\n"
        "    shape = list(f.get_slice('embeddings.weight').get_shape())\n"
        "ids = tok('the tiny model')['input_ids']\n"
        "print(json.dumps({'ids': ids, 'type': cfg.model_type, 'shape': shape}))\n"
    )
    result = run_client(fakehub, tmp_path, code)
    assert (
        result["type"] == "bert"
        and result["ids"][0] == 2
        and result["ids"][-1] == 3
        and len(result["ids"]) == 5
    )
    assert 1 not in result["ids"]  # every word is in the vocabulary: no [UNK]
    assert result["shape"] == [50 * 1024 * 1024 // 256, 64]


def test_datasets_loads_the_configs_and_the_parquet_convert(fakehub, tmp_path):
    code = (
        "import datasets, json\n"
        f"main = datasets.load_dataset({DATASET!r})\n"
        f"conv = datasets.load_dataset({DATASET!r}, revision='refs/convert/parquet',\n"
        "                              data_files={'train': 'default/train/0000.parquet'})\n"
        "rows = {k: v.num_rows for k, v in main.items()}\n"
        "text = main['train'][3]['text']\n"
        "print(json.dumps({'main': rows, 'conv': conv['train'].num_rows, 'text': text}))\n"
    )
    result = run_client(fakehub, tmp_path, code)
    assert result == {"main": {"train": 20, "test": 10}, "conv": 20, "text": f"train sentence 3 {WORDS[3]}"}
