"""Make the format-1 saved models in ``format1/`` (provenance; the tests do not run this).

It must be run against commit 6bff5a0, the last commit before the frontend -> encoder -> head
refactor (0e071d1) changed the saved-model format, e.g.::

    git worktree add /tmp/old 6bff5a0
    PYTHONPATH=/tmp/old/src .venv/bin/python tests/models/legacy/make_format1.py

Each model is tiny, trained one epoch on tiny synthetic data, and saved with ``model.save`` into
``format1/<name>/``; ``format1/<name>/expected.json`` records the data it was asked about
(``inputs`` for ``predict``, ``data`` for ``evaluate``) and what that seqlab answered
(``predictions``, ``metrics``). ``tests/models/test_legacy_models.py`` loads each model with
today's seqlab and asks the same questions.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import seqlab

HERE = Path(__file__).resolve().parent
OUT = HERE / "format1"
COMMIT = "6bff5a0"

WORDS = ["red", "blue", "green", "cat", "dog", "runs", "sits", "the", "a", "big"]
TAGS = {"cat": "B-ANI", "dog": "B-ANI", "red": "B-COL", "blue": "B-COL", "green": "B-COL"}


def classification(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        toks = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
        label = "animal" if any(t in ("cat", "dog") for t in toks) else "other"
        out.append({"text": " ".join(toks), "label": label})
    return out


def labeling(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        toks = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
        out.append({"tokens": toks, "tags": [TAGS.get(t, "O") for t in toks]})
    return out


def lm(rng: random.Random, n: int) -> list[dict[str, Any]]:
    return [{"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))} for _ in range(n)]


def generation(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        word = rng.choice(WORDS)
        out.append({"source": word, "target": word[::-1]})
    return out


TRAIN = {"epochs": 1, "batch_size": 8, "lr": 0.01, "progress": False, "patience": None}

# name -> (family, task, task_options, build settings, data maker, input key for predict)
MODELS: dict[str, tuple[str, str, dict[str, Any], dict[str, Any], Any, str]] = {
    "lstm_classifier": ("lstm", "classification", {},
                        {"pooling": "mean", "word_dropout": 0.1, "embedding_dim": 8, "hidden_size": 8},
                        classification, "text"),
    "gru_crf_tagger": ("gru", "labeling", {},
                       {"bidirectional": True, "head": "crf", "char_filters": 4, "char_dim": 4,
                        "embedding_dim": 8, "hidden_size": 8},
                       labeling, "tokens"),
    "transformer_lm": ("transformer", "lm", {"tokenizer": "char", "block_size": 16},
                       {"embedding_dim": 8, "n_heads": 2, "num_layers": 1, "hidden_size": 16, "max_len": 32},
                       lm, "text"),
    "mamba_classifier": ("mamba", "classification", {},
                         {"embedding_dim": 8, "hidden_size": 12, "num_layers": 1, "d_state": 4, "expand": 1},
                         classification, "text"),
    "hybrid_tagger": ("hybrid", "labeling", {},
                      {"embedding_dim": 8, "num_layers": 2, "n_heads": 2, "d_state": 4, "expand": 1, "d_ff": 16},
                      labeling, "tokens"),
    "seq2seq_generation": ("seq2seq", "generation", {},
                           {"embedding_dim": 8, "hidden_size": 8, "word_dropout": 0.1},
                           generation, "source"),
    "transformer_generation": ("transformer", "generation", {},
                               {"embedding_dim": 8, "n_heads": 2, "num_layers": 1, "hidden_size": 16, "max_len": 64},
                               generation, "source"),
}


def main() -> None:
    commit = subprocess.run(["git", "-C", str(Path(seqlab.__file__).parent), "rev-parse", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    if not commit.startswith(COMMIT):
        sys.exit(f"seqlab comes from {seqlab.__file__} at commit {commit}; run this against commit {COMMIT}")
    if OUT.exists():
        shutil.rmtree(OUT)
    total = 0
    for name, (family, task, task_options, settings, make, key) in MODELS.items():
        rng = random.Random(name)
        train, test = make(rng, 48), make(rng, 12)
        settings = dict(settings)
        head = settings.pop("head", None)
        model = seqlab.build(family, task, task_options=task_options, train=TRAIN, head=head, **settings)
        model.fit(train)
        path = OUT / name
        model.save(path)
        inputs = [ex[key] for ex in test[:6]]
        expected = {
            "seqlab_commit": COMMIT,
            "family": family,
            "task": task,
            "inputs": inputs,
            "data": test,
            "predictions": model.predict(inputs),
            "metrics": model.evaluate(test),
        }
        (path / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
        size = sum(f.stat().st_size for f in path.iterdir())
        total += size
        print(f"{name}: {size} bytes, {expected['metrics']}")
    print(f"total: {total} bytes")


if __name__ == "__main__":
    main()
