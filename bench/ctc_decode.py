"""CTC decoding: seqlab against pyctcdecode on the same posteriors, without and with the same
ARPA word LM: top-1 agreement and utterances per second.

Transcripts: the Asterisk prompts (Debian ``asterisk-core-sounds-en``: 568 prompts, tone
entries dropped), lowercased to a-z, apostrophe and space (29 labels with the blank). Each
utterance's posteriors are synthetic but peaked on the real transcript: every character holds
1-3 frames, blanks of 0-2 frames between (at least one between repeated letters), and each
label frame's peak is, with probability ``--confuse``, a wrong letter; logits are
``peak * U(6, 12) + N(0, 1)``, log-softmaxed and floored at 1e-6 / V. Even-numbered prompts
fit a word 3-gram (seqlab's Kneser-Ney, written as ARPA by seqlab); the odd-numbered ones are
decoded, so the LM has not seen them. seqlab reads that ARPA file back (``NGramLM.from_arpa``);
pyctcdecode reads it through kenlm. Both decoders run with pyctcdecode's defaults (beam 100,
token_min_logp -5, beam_prune_logp -10, alpha 0.5, beta 1.5, unk offset -10). With the LM,
seqlab runs twice: as it is, and with ``trailing_space_unk=True`` (pyctcdecode's rule of scoring
a hypothesis that ends in a space as ending in an unknown word).

pyctcdecode needs numpy < 2, so this script runs it in its own virtual environment (``--peer-python``,
default /work/peerenvs/pyctcdecode/bin/python, made with
``python3 -m venv /work/peerenvs/pyctcdecode && /work/peerenvs/pyctcdecode/bin/pip install "numpy<2" pyctcdecode kenlm``):
it calls this same file with ``--as-peer``, which imports neither torch nor seqlab.

    OMP_NUM_THREADS=1 python bench/ctc_decode.py [--confuse 0.05] [--n 284] [--repeats 2]

Times are CPU seconds of the decoding process (``time.process_time``, one thread each), the
fastest of ``--repeats`` interleaved runs: on a shared machine wall time mostly measures the
neighbours.

flashlight-text (the ``bench`` extra; it installs beside numpy 2, so it runs in this process) is
the second peer, without an LM: its lexicon-free decoder with ``ZeroLM``. With a word LM it
decodes through a lexicon trie with smeared unigram look-ahead, a different search, so only the
LM-free search is compared like for like.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LABELS = ["", " ", *"abcdefghijklmnopqrstuvwxyz", "'"]
PROMPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
PEER = "/work/peerenvs/pyctcdecode/bin/python"


def transcripts() -> list[str]:
    if not PROMPTS.exists():
        raise SystemExit(f"{PROMPTS} is missing: apt-get install asterisk-core-sounds-en")
    out = []
    for line in gzip.open(PROMPTS, "rt", encoding="utf-8"):
        if ":" not in line or line.startswith(";"):
            continue
        text = line.split(":", 1)[1].strip()
        if not text or text.startswith("["):
            continue
        text = " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())
        if text:
            out.append(text)
    return out


def posteriors(text: str, rng: np.random.Generator, confuse: float) -> np.ndarray:
    V = len(LABELS)
    ids = [LABELS.index(c) for c in text]
    frames: list[int] = []
    prev = -1
    for c in ids:
        frames += [0] * int(rng.integers(1 if c == prev else 0, 3))
        frames += [c] * int(rng.integers(1, 4))
        prev = c
    frames += [0] * int(rng.integers(0, 3))
    peak = np.array(frames)
    wrong = (peak > 0) & (rng.random(len(peak)) < confuse)
    peak[wrong] = rng.integers(1, V, int(wrong.sum()))
    x = rng.normal(0, 1.0, (len(peak), V))
    x[np.arange(len(peak)), peak] += rng.uniform(6, 12, len(peak))
    p = np.exp(x - x.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    eps = 1e-6
    return np.log((1 - eps) * p + eps / V)


def peer_main(args: argparse.Namespace) -> None:
    """pyctcdecode's side, in its own environment: decode every utterance, print JSON."""
    from pyctcdecode import build_ctcdecoder

    data = np.load(args.posteriors)
    logits = [data[k] for k in sorted(data.files, key=int)]
    out = {}
    for name, arpa in (("beam", None), ("beam+lm", args.arpa)):
        unigrams = None
        if arpa:
            vocab = json.loads(Path(args.vocab).read_text())
            unigrams = [w for w in vocab if w not in ("<unk>", "<s>", "</s>")]
        dec = build_ctcdecoder(LABELS, arpa, unigrams=unigrams)
        t0 = time.process_time()
        texts = [dec.decode_beams(lp)[0][0] for lp in logits]
        out[name] = {"texts": texts, "seconds": time.process_time() - t0}
    print(json.dumps(out))


def flashlight_beam(lps: list[np.ndarray]) -> dict | None:
    """flashlight-text's lexicon-free CTC beam search without an LM (beam 100, every label,
    threshold 10, alignments summed), or None when flashlight-text is not installed."""
    try:
        from flashlight.lib.text.decoder import (
            CriterionType,
            LexiconFreeDecoder,
            LexiconFreeDecoderOptions,
            ZeroLM,
        )
    except ImportError:
        return None
    opts = LexiconFreeDecoderOptions(beam_size=100, beam_size_token=len(LABELS), beam_threshold=10.0, lm_weight=0.0,
                                     sil_score=0.0, log_add=True, criterion_type=CriterionType.CTC)
    dec = LexiconFreeDecoder(opts, ZeroLM(), LABELS.index(" "), 0, [])
    texts = []
    t0 = time.process_time()
    for lp in lps:
        e = np.ascontiguousarray(lp, dtype=np.float32)
        path = [t for t in dec.decode(e.ctypes.data, e.shape[0], e.shape[1])[0].tokens if t >= 0]
        ids = [c for i, c in enumerate(path) if c != 0 and (i == 0 or c != path[i - 1])]
        texts.append(" ".join("".join(LABELS[i] for i in ids).split()))
    return {"texts": texts, "seconds": time.process_time() - t0}


def wer(ref: list[str], hyp: list[str]) -> float:
    import jiwer

    return float(jiwer.wer(ref, [h if h else "<empty>" for h in hyp]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--confuse", type=float, default=0.05)
    ap.add_argument("--n", type=int, default=0, help="decode the first n held-out prompts (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="interleaved runs of each side; the fastest counts")
    ap.add_argument("--show", action="store_true", help="print every top-1 that differs (stderr)")
    ap.add_argument("--peer-python", default=os.environ.get("PYCTCDECODE_PYTHON", PEER))
    ap.add_argument("--as-peer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--posteriors", help=argparse.SUPPRESS)
    ap.add_argument("--arpa", help=argparse.SUPPRESS)
    ap.add_argument("--vocab", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.as_peer:
        peer_main(args)
        return

    from seqlab.inference.ctc import ctc_beam_search, ctc_greedy
    from seqlab.models.classical.ngram import NGramLM

    texts = transcripts()
    train, test = texts[0::2], texts[1::2]
    if args.n:
        test = test[: args.n]
    rng = np.random.default_rng(args.seed)
    lps = [posteriors(t, rng, args.confuse) for t in test]
    with tempfile.TemporaryDirectory() as tmp:
        arpa, vocab, post = f"{tmp}/lm.arpa", f"{tmp}/vocab.json", f"{tmp}/post.npz"
        NGramLM(order=3).fit_counts([t.split() for t in train]).to_arpa(arpa)
        lm = NGramLM.from_arpa(arpa)
        Path(vocab).write_text(json.dumps(lm.vocab_))
        np.savez(post, **{str(i): x for i, x in enumerate(lps)})
        cmd = [args.peer_python, __file__, "--as-peer", "--posteriors", post, "--arpa", arpa, "--vocab", vocab]
        peer: dict = {}
        ours: dict = {}
        for _ in range(args.repeats):  # interleaved; the fastest run of each counts
            got = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            for name, r in got.items():
                if name not in peer or r["seconds"] < peer[name]["seconds"]:
                    peer[name] = r
            t0 = time.process_time()
            greedy = [" ".join("".join(LABELS[i] for i in ids).split()) for ids in (ctc_greedy(lp, blank=0)[0] for lp in lps)]
            runs = {"greedy": {"texts": greedy, "seconds": time.process_time() - t0}}
            for name, model, compat in (("beam", None, False), ("beam+lm", lm, False), ("beam+lm, pyctcdecode's end rule", lm, True)):
                t0 = time.process_time()
                hyps = [ctc_beam_search(lp, tokens=LABELS, lm=model, trailing_space_unk=compat)[0][0].text for lp in lps]
                runs[name] = {"texts": hyps, "seconds": time.process_time() - t0}
            for name, r in runs.items():
                if name not in ours or r["seconds"] < ours[name]["seconds"]:
                    ours[name] = r
    fl = flashlight_beam(lps)
    n = len(test)
    print(f"{n} held-out Asterisk prompts, {sum(len(x) for x in lps)} frames, confusion {args.confuse}; "
          f"LM: word 3-gram on {len(train)} other prompts")
    print("| decoder | seqlab utt/s | pyctcdecode utt/s | speed ratio | identical top-1 | WER seqlab | WER pyctcdecode |")
    print("|---|---|---|---|---|---|---|")
    g = ours["greedy"]
    print(f"| greedy | {n / g['seconds']:.0f} | - | - | - | {wer(test, g['texts']):.4f} | - |")
    for name in ours:
        if name == "greedy":
            continue
        a, b = ours[name], peer[name.split(",")[0]]
        same = sum(x == y for x, y in zip(a["texts"], b["texts"]))
        print(f"| {name} | {n / a['seconds']:.1f} | {n / b['seconds']:.1f} | {b['seconds'] / a['seconds']:.2f} | "
              f"{same}/{n} = {100 * same / n:.1f}% | {wer(test, a['texts']):.4f} | {wer(test, b['texts']):.4f} |")
        for x, y in zip(a["texts"], b["texts"]):
            if x != y and args.show:
                print(f"  differs: seqlab {x!r} / pyctcdecode {y!r}", file=sys.stderr)
    if fl is None:
        print("flashlight-text is not installed (pip install flashlight-text): its row is skipped")
    else:
        a = ours["beam"]
        same = sum(x == y for x, y in zip(a["texts"], fl["texts"]))
        print(f"| beam, no LM, vs flashlight-text | {n / a['seconds']:.1f} | {n / fl['seconds']:.1f} (flashlight) | "
              f"{fl['seconds'] / a['seconds']:.2f} | {same}/{n} = {100 * same / n:.1f}% | {wer(test, a['texts']):.4f} | "
              f"{wer(test, fl['texts']):.4f} (flashlight) |")


if __name__ == "__main__":
    main()
