"""The RNN transducer as a model: prefix beam search against enumeration of label sequences
(exact when unpruned), greedy against its plain reading, the head's loss against the plain
lattice loss, and the transcription task with ``head="rnnt"``: it learns the toy tones, saves and
loads to the same predictions, and refuses what it cannot do."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import seqlab
from seqlab.errors import ConfigError
from seqlab.inference.rnnt import rnnt_greedy, rnnt_greedy_ref, rnnt_loss, rnnt_prefix_beam_search
from seqlab.models.transducer import Transducer, TransducerConfig, TransducerHead
from seqlab.tasks.transcription import TranscriptionTask


def tiny_net(seed: int, V: int = 3) -> Transducer:
    torch.manual_seed(seed)
    net = Transducer(4, V, blank=0, config=TransducerConfig(pred_dim=6, joint_dim=6, dropout=0.0)).double().eval()
    with torch.no_grad():
        net.joiner.out.weight.mul_(2.5)  # sharper distributions, so labels get emitted
    return net


def sequence_scores(net: Transducer, enc: torch.Tensor, max_symbols: int) -> dict[tuple[int, ...], float]:
    """log p(y | x) for every label sequence y, summed over every alignment with at most
    ``max_symbols`` labels per frame, by enumerating the alignments (per frame: a run of labels,
    then the blank). The predictor runs over the whole prefix with its batched forward."""
    V = net.joiner.out.out_features
    runs = [r for n in range(max_symbols + 1) for r in itertools.product(range(1, V), repeat=n)]
    memo: dict[tuple[int, ...], torch.Tensor] = {}

    def pred(y: tuple[int, ...]) -> torch.Tensor:
        if y not in memo:
            memo[y] = net.predictor(torch.tensor([list(y)], dtype=torch.long).view(1, -1))[0, -1]
        return memo[y]

    sums: dict[tuple[int, ...], list[float]] = {}
    with torch.no_grad():
        for choice in itertools.product(runs, repeat=enc.shape[0]):
            y: tuple[int, ...] = ()
            s = 0.0
            for t, run in enumerate(choice):
                for k in [*run, 0]:
                    s += float(net.joiner(enc[t], pred(y)).log_softmax(-1)[k])
                    if k:
                        y = (*y, k)
            sums.setdefault(y, []).append(s)
    return {y: float(torch.logsumexp(torch.tensor(v, dtype=torch.float64), 0)) for y, v in sums.items()}


@pytest.mark.parametrize("seed,max_symbols", [(0, 1), (1, 2), (2, 2)])
def test_unpruned_prefix_beam_search_is_exact(seed: int, max_symbols: int) -> None:
    net = tiny_net(seed)
    enc = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    want = sequence_scores(net, enc, max_symbols)
    hyps = rnnt_prefix_beam_search(enc, net.predictor.step, net.joiner, beam=None, max_symbols=max_symbols, nbest=len(want))
    assert len(hyps) == len(want)
    for h in hyps:
        assert h.score == pytest.approx(want[tuple(h.tokens)], abs=1e-9)
    best = max(want.items(), key=lambda kv: kv[1])
    wide = rnnt_prefix_beam_search(enc, net.predictor.step, net.joiner, beam=1000, max_symbols=max_symbols)[0]
    assert tuple(wide.tokens) == best[0] and wide.score == pytest.approx(best[1], abs=1e-9)


def test_prefix_beam_score_is_the_lattice_likelihood_when_the_limit_does_not_bind() -> None:
    """A sequence no longer than the per-frame limit loses no alignment to it: its beam score is
    -rnnt_loss of the joiner's logits over its own lattice."""
    net = tiny_net(3)
    enc = torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    hyps = rnnt_prefix_beam_search(enc, net.predictor.step, net.joiner, beam=None, max_symbols=2, nbest=10_000)
    short = [h for h in hyps if len(h.tokens) <= 2]
    assert len(short) == 1 + 2 + 4
    for h in short:
        y = torch.tensor([h.tokens], dtype=torch.long).view(1, -1)
        with torch.no_grad():
            logits = net.joiner(enc[None, :, None], net.predictor(y)[:, None])  # (1, T, U+1, V)
            nll = rnnt_loss(logits, y, torch.tensor([4]), torch.tensor([len(h.tokens)]), reduction="none")
        assert h.score == pytest.approx(-float(nll[0]), abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_batched_greedy_is_the_plain_greedy_per_row(seed: int) -> None:
    net = tiny_net(seed, V=5)
    encs = torch.randn(4, 7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2
    lengths = torch.tensor([7, 4, 1, 6])
    got = rnnt_greedy(encs, lengths, net.predictor.step, net.joiner, max_symbols=2)
    want = [rnnt_greedy_ref(encs[b, : lengths[b]], net.predictor.step, net.joiner, max_symbols=2) for b in range(4)]
    assert got == want and any(want)


def test_head_loss_is_the_lattice_loss_and_ignores_padding() -> None:
    torch.manual_seed(0)
    lengths = torch.tensor([5, 3])
    head = TransducerHead(4, 4, lambda batch: lengths, config=TransducerConfig(pred_dim=5, joint_dim=6, dropout=0.0)).double()
    h = torch.randn(2, 5, 4, dtype=torch.float64)
    mask = torch.arange(5)[None] < lengths[:, None]
    h2 = h.clone()
    h2[1, 3:] = 7.0  # garbage in the padding
    batch = {"labels": torch.tensor([[1, 2, 3], [3, 3, 0]]), "label_lengths": torch.tensor([3, 2])}
    total, units = head.loss(head(h2, mask), batch)
    t = head.transducer
    want = 0.0
    with torch.no_grad():
        for b in range(2):
            n, u = int(lengths[b]), int(batch["label_lengths"][b])
            y = batch["labels"][b : b + 1, :u]
            logits = t.joiner(h[b : b + 1, :n, None], t.predictor(y)[:, None])
            want += float(rnnt_loss(logits, y, torch.tensor([n]), torch.tensor([u]), reduction="sum"))
    assert float(total.detach()) == pytest.approx(want, rel=1e-6) and int(units) == 5


@pytest.fixture(scope="module")
def toy_model() -> Any:
    train, _, opts = TranscriptionTask.toy_examples(0)
    model = seqlab.build("gru", task="transcription", head="rnnt", d_model=32, hidden_size=32, num_layers=1, dropout=0.0,
                         task_options={**opts, "spec_augment": False, "normalize": False, "subsampling": 4,
                                       "rnnt_pred_dim": 16, "rnnt_joint_dim": 32},
                         train={"epochs": 40, "batch_size": 8, "lr": 1e-2, "patience": None, "progress": False, "seed": 0})
    model.fit(train)
    return model


def test_a_transducer_learns_the_tone_alphabet_and_round_trips(toy_model: Any, tmp_path: Path) -> None:
    """Overfit: a GRU + RNN-T trained on the toy tones transcribes its training utterances
    (greedy and beam); a saved model loads with the same weights and the same predictions."""
    model = toy_model
    train, inputs, _ = TranscriptionTask.toy_examples(0)
    m = model.evaluate(train)
    assert m["cer"] == 0.0, m
    greedy = model.predict([ex["audio"] for ex in train[:16]] + inputs)
    assert greedy[:16] == [ex["text"] for ex in train[:16]]
    model.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    assert again.head == "rnnt" and isinstance(again.module.head, TransducerHead)
    a, b = model.module.state_dict(), again.module.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert again.predict([ex["audio"] for ex in train[:16]] + inputs) == greedy
    assert again.evaluate(train) == m
    again.task.config = dataclasses.replace(again.task.config, rnnt_beam=4)
    assert again.evaluate(train)["cer"] == 0.0


def test_rnnt_head_refuses_what_it_cannot_do(toy_model: Any) -> None:
    model = toy_model
    from seqlab.audio.align import align

    _, inputs, _ = TranscriptionTask.toy_examples(0)
    with pytest.raises(ConfigError, match="RNN-T head"):
        align(model, inputs[0], "ab")
    with pytest.raises(ConfigError, match="per-frame label distribution"):
        model.module.head.probabilities(torch.zeros(1, 2, 3), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ConfigError, match="head 'crf' is not available for task 'transcription'; valid: ctc, rnnt"):
        seqlab.build("gru", task="transcription", head="crf")
    with pytest.raises(ConfigError, match="rnnt_beam"):
        seqlab.build("gru", task="transcription", task_options={"rnnt_beam": 0})
    assert np.isfinite(model.evaluate(TranscriptionTask.toy_examples(1)[0])["loss"])


def test_the_cli_trains_and_predicts_with_an_rnnt_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Plumbing only (one epoch): ``--head rnnt`` and ``--task.rnnt_*`` reach the saved model."""
    sf = pytest.importorskip("soundfile")
    import json

    from seqlab.cli import main

    examples, _, _ = TranscriptionTask.toy_examples(0)
    rows = []
    for i, ex in enumerate(examples[:8]):
        sf.write(str(tmp_path / f"u{i}.wav"), np.asarray(ex["audio"], dtype=np.float32), 8000)
        rows.append(json.dumps({"audio_filepath": f"u{i}.wav", "text": ex["text"]}))
    (tmp_path / "train.jsonl").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "train.jsonl"), "--task", "transcription", "--model", "gru", "--head", "rnnt",
                 "--out", str(out), "--task.sample_rate", "8000", "--task.rnnt_beam", "2", "--task.rnnt_joint_dim", "12",
                 "--model.d_model", "8", "--train.epochs", "1", "--train.progress", "false"]) == 0
    capsys.readouterr()
    model = seqlab.load(out / "model")
    assert model.head == "rnnt" and model.task.config.rnnt_beam == 2
    assert model.module.head.transducer.joiner.out.in_features == 12
    assert main(["predict", str(out / "model"), str(tmp_path / "u0.wav")]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["prediction"] == model.predict([str(tmp_path / "u0.wav")])[0]
