"""seqlab's decoder-only Transformer against x-transformers at the same configuration.

1. Training throughput: forward + backward + AdamW step of a causal LM (RoPE, Pre-LN, tied
   embeddings, SDPA attention in both), same vocabulary, batch and length, tokens/s.
2. KV-cache decoding: greedy generation of ``--new`` tokens from a one-token prompt, cached
   (``encoder.step``) against recomputing the whole prefix at every token; x-transformers'
   own cached / uncached generation alongside.

Runs alternate between the two libraries in one process; best and median of ``--repeats``.

    python bench/transformer_throughput.py [--dim 128] [--layers 2] [--heads 4] [--seq 128]
        [--batch 16] [--steps 10] [--repeats 3] [--new 512] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from seqlab.errors import MissingDependencyError
from seqlab.models.network import EndsConfig, Network, build_network
from seqlab.models.transformer import TransformerConfig, TransformerEncoder
from seqlab.tasks import make_task

try:
    from x_transformers import AutoregressiveWrapper, Decoder, TransformerWrapper
except ImportError as e:  # pragma: no cover
    raise MissingDependencyError("this benchmark compares with x-transformers: pip install x-transformers") from e


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build(args: argparse.Namespace) -> tuple[Network, torch.nn.Module, int]:
    text = "".join(chr(c) for c in range(33, 33 + args.vocab))  # every character once: vocab + specials
    task = make_task("lm", {"tokenizer": "char", "block_size": args.seq}).fit([{"text": text}])
    vocab = task.input_size
    cfg = TransformerConfig(d_model=args.dim, n_heads=args.heads, num_layers=args.layers, dropout=0.0,
                            positions="rope", causal=True, max_len=args.new + 8)
    torch.manual_seed(0)
    ours = build_network(task, cfg, EndsConfig(), TransformerEncoder).to(args.device)
    theirs = TransformerWrapper(
        num_tokens=vocab, max_seq_len=max(args.seq, args.new + 8), tie_embedding=True,
        attn_layers=Decoder(dim=args.dim, depth=args.layers, heads=args.heads, attn_dim_head=args.dim // args.heads,
                           rotary_pos_emb=True, attn_flash=True),
    ).to(args.device)
    return ours, theirs, vocab


def train_rate(step: Callable[[torch.Tensor], torch.Tensor], params: list[torch.nn.Parameter], ids: torch.Tensor,
               steps: int, device: str) -> float:
    opt = torch.optim.AdamW(params, lr=1e-4)
    for _ in range(2):  # warm-up
        step(ids).backward()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        step(ids).backward()
        opt.step()
    _sync(device)
    return steps * ids.numel() / (time.perf_counter() - start)


@torch.no_grad()
def ours_generate(module: Network, n: int, cached: bool, device: str) -> list[int]:
    seq = [5]
    if cached:
        h, state = module.encoder.step(module.frontend.embed(torch.tensor([seq], device=device)), None)  # (1, 1, D)
        for _ in range(n):
            seq.append(int(module.head(h, None)[0, -1].argmax()))
            h, state = module.encoder.step(module.frontend.embed(torch.tensor([seq[-1:]], device=device)), state)
        return seq[1:]
    for _ in range(n):
        ids = torch.tensor([seq], device=device)
        seq.append(int(module({"input_ids": ids, "mask": torch.ones_like(ids, dtype=torch.bool)})[0, -1].argmax()))
    return seq[1:]


def timed(fn: Callable[[], object], device: str) -> tuple[float, object]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in (("dim", 128), ("layers", 2), ("heads", 4), ("seq", 128), ("batch", 16), ("steps", 10),
                          ("repeats", 3), ("new", 512), ("vocab", 90)):
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ours, theirs, vocab = build(args)
    n_ours = sum(q.numel() for q in ours.parameters())
    n_theirs = sum(q.numel() for q in theirs.parameters())
    print(f"config: d={args.dim} layers={args.layers} heads={args.heads} vocab={vocab} seq={args.seq} "
          f"batch={args.batch} device={args.device} threads={torch.get_num_threads()}")
    print(f"parameters: seqlab {n_ours:,}  x-transformers {n_theirs:,}")

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (args.batch, args.seq + 1), generator=g).to(args.device)
    mask = torch.ones(args.batch, args.seq, dtype=torch.bool, device=args.device)

    def ours_loss(x: torch.Tensor) -> torch.Tensor:
        logits = ours({"input_ids": x[:, :-1], "mask": mask})  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, vocab), x[:, 1:].reshape(-1))

    def theirs_loss(x: torch.Tensor) -> torch.Tensor:
        logits = theirs(x[:, :-1])  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, vocab), x[:, 1:].reshape(-1))

    rates: dict[str, list[float]] = {"seqlab": [], "x-transformers": []}
    for _ in range(args.repeats):
        rates["seqlab"].append(train_rate(ours_loss, list(ours.parameters()), ids, args.steps, args.device))
        rates["x-transformers"].append(train_rate(theirs_loss, list(theirs.parameters()), ids, args.steps, args.device))
    print("\ntraining, forward+backward+AdamW, tokens/s (best / median):")
    for k, v in rates.items():
        print(f"  {k:15s} {max(v):12,.0f} / {statistics.median(v):12,.0f}")
    print(f"  ratio seqlab / x-transformers: best {max(rates['seqlab']) / max(rates['x-transformers']):.2f}, "
          f"median {statistics.median(rates['seqlab']) / statistics.median(rates['x-transformers']):.2f}")

    ours.eval()
    theirs.eval()
    wrapper = AutoregressiveWrapper(theirs)
    prompt = torch.tensor([[5]], device=args.device)
    times: dict[str, list[float]] = {"seqlab cached": [], "seqlab recompute": [], "x-t cached": [], "x-t recompute": []}
    same = True
    for _ in range(max(1, args.repeats - 1)):
        t_c, a = timed(lambda: ours_generate(ours, args.new, True, args.device), args.device)
        t_r, b = timed(lambda: ours_generate(ours, args.new, False, args.device), args.device)
        same = same and a == b
        times["seqlab cached"].append(t_c)
        times["seqlab recompute"].append(t_r)
        with torch.no_grad():
            t_xc, _ = timed(lambda: wrapper.generate(prompt, args.new, temperature=0.0, cache_kv=True), args.device)
            t_xr, _ = timed(lambda: wrapper.generate(prompt, args.new, temperature=0.0, cache_kv=False), args.device)
        times["x-t cached"].append(t_xc)
        times["x-t recompute"].append(t_xr)
    print(f"\ngreedy decoding of {args.new} tokens, seconds (best / median):")
    for k, v in times.items():
        print(f"  {k:17s} {min(v):8.3f} / {statistics.median(v):8.3f}   ({args.new / min(v):8,.0f} tokens/s best)")
    print(f"  seqlab KV-cache speedup over recomputation: {min(times['seqlab recompute']) / min(times['seqlab cached']):.1f}x"
          f"  (x-transformers: {min(times['x-t recompute']) / min(times['x-t cached']):.1f}x)")
    print(f"  seqlab cached == recomputed tokens: {same}")
    print(f"  cached decoding seqlab / x-transformers speed: {min(times['x-t cached']) / min(times['seqlab cached']):.2f}")


if __name__ == "__main__":
    main()
