"""``make demo``: neural and classical models on real bundled data, one table, one Shakespeare sample.

Each neural model trains for a fixed number of optimizer steps (its ``max_steps``), never a time
budget, so the table is the same on a fast, slow or busy machine: a bidirectional LSTM tagger on
WNUT-16 NER, a GRU sentiment classifier on the tweets corpus, LSTM and Mamba character language
models on Shakespeare, a BiLSTM-CTC recogniser on connected spoken digits (FSDD) and a
Transformer grapheme-to-phoneme model on CMUdict. Beside them, in the same table, the classical
families on the same splits: an HMM tagger (TnT suffix model) and a feature CRF on WNUT-16, a
modified Kneser-Ney 5-gram character model on Shakespeare, and Theta on the M3 monthly series.
Settings a job leaves alone come from the family's recipe (:mod:`seqlab.recipes`), as for any user.
A job whose data this machine lacks (FSDD lives outside the package) is skipped with a message.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlab.formatting import format_table

__all__ = ["run_demo", "DemoJob", "JOBS"]


@dataclass(frozen=True)
class DemoJob:
    dataset: str
    family: str
    metric: str
    model: dict[str, Any]
    train: dict[str, Any]
    task: dict[str, Any]
    label: str = ""  # the model column; default "family (bi|uni)"

    def name(self) -> str:
        return self.label or f"{self.family} ({'bi' if self.model.get('bidirectional') else 'uni'})"

    def tiny(self) -> DemoJob:
        """The same job at a tiny size (narrow, one layer, a few steps or iterations): what the
        determinism test runs, through the same code path as the demo."""
        widths = {"d_model": 16, "hidden_size": 16, "d_ff": 32, "num_layers": 1, "decoder_layers": 1,
                  "n_heads": 2, "d_state": 4, "max_iterations": 3}
        model = {k: widths.get(k, v) for k, v in self.model.items()}
        train = {**self.train, "max_steps": 6, "warmup_steps": 2, "progress": False} if self.train else {}
        return dataclasses.replace(self, model=model, train=train)


JOBS: tuple[DemoJob, ...] = (
    DemoJob("wnut16", "lstm", "f1",
            {"bidirectional": True, "d_model": 100, "hidden_size": 128, "dropout": 0.3, "word_dropout": 0.1},
            {"epochs": 40, "max_steps": 1800, "batch_size": 16, "lr": 3e-3, "patience": 6, "warmup_steps": 50}, {}),
    DemoJob("wnut16", "hmm", "f1", {}, {}, {}, "HMM (TnT suffixes)"),
    DemoJob("wnut16", "crf", "f1", {"c1": 0.05, "c2": 0.05, "max_iterations": 100}, {}, {}, "feature CRF (L-BFGS)"),
    DemoJob("tweets", "gru", "accuracy",
            {"bidirectional": True, "d_model": 100, "hidden_size": 128, "dropout": 0.3, "word_dropout": 0.1,
             "pooling": "max"},
            {"epochs": 10, "max_steps": 1200, "batch_size": 64, "lr": 2e-3, "patience": 2, "warmup_steps": 100},
            {"max_len": 64}),
    DemoJob("shakespeare_char", "lstm", "bits_per_char",
            {"d_model": 128, "hidden_size": 384, "num_layers": 1, "dropout": 0.1},
            {"epochs": 1, "max_steps": 500, "batch_size": 32, "lr": 4e-3, "warmup_steps": 50, "clip_norm": 1.0}, {"block_size": 128}),
    DemoJob("shakespeare_char", "mamba", "bits_per_char",
            {"d_model": 128, "num_layers": 2, "d_state": 16, "dropout": 0.0},
            {"epochs": 1, "max_steps": 500, "batch_size": 32, "lr": 4e-3, "warmup_steps": 50, "clip_norm": 1.0},
            {"block_size": 128}, "Mamba (selective SSM)"),
    DemoJob("shakespeare_char", "ngram", "bits_per_char", {"order": 5, "smoothing": "kneser_ney"}, {}, {"block_size": 128},
            "5-gram (modified Kneser-Ney)"),
    DemoJob("m3_monthly", "theta", "smape", {}, {}, {}, "Theta (the M3 winner), per series"),
    DemoJob("fsdd_digits", "lstm", "wer",
            {"bidirectional": True, "d_model": 96, "hidden_size": 96, "num_layers": 2, "dropout": 0.1},
            {"epochs": 1000, "max_steps": 600, "batch_size": 16, "lr": 2e-3, "warmup_steps": 60, "patience": None},
            {}, "BiLSTM-CTC (digit error rate)"),
    DemoJob("cmudict", "transformer", "wer",
            {"d_model": 128, "n_heads": 4, "num_layers": 2, "decoder_layers": 2, "d_ff": 512, "dropout": 0.1,
             "positions": "sinusoidal"},
            {"epochs": 3, "max_steps": 900, "batch_size": 64, "lr": 2e-3, "warmup_steps": 200, "patience": None}, {},
            "Transformer encoder-decoder"),
)


def run_demo(out: Path = Path("runs/demo"), jobs: tuple[DemoJob, ...] = JOBS, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Train every job, print the table and a sample; returns the table rows (with the samples
    under ``"sample"``). Budgets are steps and epochs, so the table's numbers do not depend on the
    machine; only the elapsed time does. ``limit``: keep the first ``limit`` examples of each split
    (the determinism test)."""
    from seqlab.data.datasets import load
    from seqlab.errors import MissingDependencyError
    from seqlab.models.registry import build, get_family

    rows: list[dict[str, Any]] = []
    lm = lm_name = g2p = None
    begin = time.perf_counter()
    for job in jobs:
        try:
            ds = load(job.dataset)
        except MissingDependencyError as e:  # a data package or folder this machine lacks: say so, go on
            print(f"\n== {job.dataset}: skipped ({e}) ==", flush=True)
            continue
        if limit is not None:
            ds = dataclasses.replace(ds, train=ds.train[:limit], valid=ds.valid[:limit], test=ds.test[:limit])
        print(f"\n== {job.dataset}: {job.name()} ({ds.info.size}) ==", flush=True)
        neural = get_family(job.family).kind == "neural"
        train = job.train if neural else None
        model: Any = build(job.family, ds, task_options=job.task, train=train, **job.model)  # LMs generate
        start = time.perf_counter()
        model.fit(ds.train, valid=ds.valid, run_dir=out / f"{job.dataset}-{job.family}" / "train", resume=False)
        seconds = time.perf_counter() - start
        valid = model.evaluate(ds.valid)
        metrics = model.evaluate(ds.test)
        path = model.save(out / f"{job.dataset}-{job.family}" / "model")
        rows.append({
            "task": ds.task.name, "model": job.name(),
            "dataset": job.dataset, "metric": job.metric, "valid": valid[job.metric], "test": metrics[job.metric],
            "parameters": model.n_parameters, "train_s": seconds, "saved": str(path),
            "valid_metrics": valid, "test_metrics": metrics,
        })
        if model.task.causal and neural and lm is None:  # a language model: sample from it below
            lm, lm_name = model, job.name()
        if model.task.decodes_free:  # a generator: show its outputs below
            g2p = (model, ds.test[:10])
    table = [(r["task"], r["model"], r["dataset"], r["metric"], f"{r['valid']:.4f}", f"{r['test']:.4f}",
              f"{r['parameters']:,}", r["saved"]) for r in rows]
    header = ("task", "model", "dataset", "metric", "valid", "test", "params", "saved at")
    print("\n" + format_table(table, header))
    print(f"\n{time.perf_counter() - begin:.0f} s in all. Every budget is in steps or epochs and every run is "
          "seeded: these numbers are the same on any machine; only the time differs.")
    if lm is not None:
        sample = lm.generate(["ROMEO.\n"], max_new_tokens=400, temperature=0.8, seed=0)[0]
        print(f"\nA Shakespeare sample ({lm_name} char LM, temperature 0.8):\n\nROMEO.\n" + sample)
        rows[0]["sample"] = sample
    if g2p is not None:
        model, examples = g2p
        predicted = model.predict([ex["source"] for ex in examples], decoding={"method": "greedy"})
        rows[0]["g2p"] = predicted
        print("\nGrapheme to phoneme, test words (Transformer encoder-decoder, greedy):\n")
        print(format_table([("".join(ex["source"]), " ".join(p), " ".join(ex["target"]), "yes" if p == ex["target"] else "")
                            for ex, p in zip(examples, predicted)], ("word", "predicted", "gold", "right")))
    return rows
