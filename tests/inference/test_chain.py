"""Chain inference against brute-force enumeration of all N^T tag paths (tiny inputs)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.errors import DataError
from seqlab.inference import (
    forward_backward,
    forward_backward_ref,
    log_partition,
    log_partition_ref,
    nbest,
    sample,
    score,
    viterbi,
    viterbi_ref,
)

Chain = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def make_chain(seed: int, lengths: list[int], T: int, N: int, dtype: torch.dtype = torch.float64,
               scale: float = 1.0) -> Chain:
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    e = torch.randn(B, T, N, generator=g, dtype=torch.float64) * scale
    tr = torch.randn(N, N, generator=g, dtype=torch.float64) * scale
    s = torch.randn(N, generator=g, dtype=torch.float64) * scale
    en = torch.randn(N, generator=g, dtype=torch.float64) * scale
    mask = torch.arange(T).unsqueeze(0) < torch.tensor(lengths, dtype=torch.long).view(B, 1)
    e = e.masked_fill(~mask.unsqueeze(-1), float("nan"))  # padding content must never matter
    return e.to(dtype), tr.to(dtype), s.to(dtype), en.to(dtype), mask


def path_score(c: Chain, b: int, y: tuple[int, ...]) -> float:
    e, tr, s, en, _ = (x.double() for x in c)
    if not y:
        return 0.0
    total = float(s[y[0]] + en[y[-1]])
    total += sum(float(e[b, t, j]) for t, j in enumerate(y))
    total += sum(float(tr[i, j]) for i, j in zip(y, y[1:]))
    return total


def all_paths(c: Chain, b: int) -> list[tuple[tuple[int, ...], float]]:
    N, L = c[0].shape[2], int(c[4][b].sum())
    return [(y, path_score(c, b, y)) for y in itertools.product(range(N), repeat=L)]


def brute(c: Chain, b: int) -> tuple[float, torch.Tensor, torch.Tensor]:
    """log Z, node marginals (T, N) and edge counts (N, N) of row b by enumeration."""
    _, T, N = c[0].shape
    paths = all_paths(c, b)
    scores = torch.tensor([s for _, s in paths], dtype=torch.float64)
    log_z = float(torch.logsumexp(scores, 0))
    node, edge = torch.zeros(T, N, dtype=torch.float64), torch.zeros(N, N, dtype=torch.float64)
    for (y, _), p in zip(paths, torch.exp(scores - log_z).tolist()):
        for t, j in enumerate(y):
            node[t, j] += p
        for i, j in zip(y, y[1:]):
            edge[i, j] += p
    return log_z, node, edge


def brute_vectorized(c: Chain, b: int) -> tuple[float, torch.Tensor, torch.Tensor]:
    """As brute(), in float64 with all N^L paths scored at once by score() (itself tested
    against the Python sum above), for slightly larger chains and -inf scores."""
    e, tr, s, en, mask = (x.double() if x.is_floating_point() else x for x in c)
    _, T, N = e.shape
    L = int(mask[b].sum())
    ys = torch.tensor(list(itertools.product(range(N), repeat=L)), dtype=torch.long).view(N**L, L)
    P = ys.shape[0]
    tags = torch.zeros(P, T, dtype=torch.long)
    tags[:, :L] = ys
    scores = score(e[b : b + 1].expand(P, -1, -1), tr, s, en, tags, mask[b : b + 1].expand(P, -1))
    log_z = torch.logsumexp(scores, 0)
    p = torch.exp(scores - log_z)  # (P,)
    node = torch.zeros(T, N, dtype=torch.float64)
    node[:L] = (torch.nn.functional.one_hot(ys, N).double() * p.view(P, 1, 1)).sum(0)
    pairs = torch.nn.functional.one_hot(ys[:, :-1] * N + ys[:, 1:], N * N).double() if L > 1 else torch.zeros(P, 0, N * N)
    edge = (pairs * p.view(P, 1, 1)).sum((0, 1)).view(N, N)
    return float(log_z), node, edge


chains = st.tuples(
    st.integers(0, 2**31 - 1),
    st.integers(1, 3),  # N
    st.integers(0, 4),  # T
    st.lists(st.integers(0, 4), min_size=1, max_size=4),
).map(lambda a: (a[0], a[1], a[2], [min(x, a[2]) for x in a[3]]))

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: 2e-4, torch.float64: 1e-9}


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(chains)
def test_log_partition_and_marginals_match_enumeration(dtype: torch.dtype, a: tuple) -> None:
    seed, N, T, lengths = a
    c = make_chain(seed, lengths, T, N, dtype)
    fast, ref, fb = log_partition(*c), log_partition_ref(*c), forward_backward(*c)
    assert fast.dtype == ref.dtype == fb.node.dtype == dtype
    for b in range(len(lengths)):
        log_z, node, edge = brute(c, b)
        tol = TOL[dtype] * max(1.0, abs(log_z))
        assert abs(float(fast[b]) - log_z) < tol and abs(float(ref[b]) - log_z) < tol
        assert abs(float(fb.log_z[b]) - log_z) < tol
        assert torch.allclose(fb.node[b].double(), node, atol=TOL[dtype])
        assert torch.allclose(fb.edge[b].double(), edge, atol=TOL[dtype] * max(1, T))


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30, deadline=None)
@given(chains)
def test_gradient_of_log_partition_is_the_marginals(dtype: torch.dtype, a: tuple) -> None:
    seed, N, T, lengths = a
    c = make_chain(seed, lengths, T, N, dtype)
    e, tr, s, en, mask = c
    w = torch.rand(len(lengths), generator=torch.Generator().manual_seed(seed), dtype=dtype)  # weights per sequence
    grads = []
    for fn in (log_partition, log_partition_ref):
        leaves = [x.clone().requires_grad_(True) for x in (e, tr, s, en)]
        (fn(*leaves, mask) * w).sum().backward()
        grads.append([torch.nan_to_num(x.grad if x.grad is not None else torch.zeros_like(x)) for x in leaves])
    fb = forward_backward(*c)
    lengths_t = mask.sum(-1)
    wn = fb.node * w.view(-1, 1, 1)
    first = wn[:, 0].sum(0) if T else torch.zeros(N, dtype=dtype)
    last = sum((wn[b, L - 1] for b, L in enumerate(lengths_t.tolist()) if L), torch.zeros(N, dtype=dtype))
    expected = [wn, (fb.edge * w.view(-1, 1, 1)).sum(0), first, last]
    for got in grads:
        for g_, x in zip(got, expected):
            g_ = g_.masked_fill(~mask.unsqueeze(-1), 0.0) if g_.dim() == 3 else g_
            assert torch.allclose(g_, x, atol=10 * TOL[dtype]), (g_, x)
    ref = forward_backward_ref(*(x.double() for x in c[:4]), mask)
    assert torch.allclose(ref.node, fb.node.double().masked_fill(~mask.unsqueeze(-1), 0), atol=10 * TOL[dtype])
    assert torch.allclose(ref.edge, fb.edge.double(), atol=10 * TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(chains, st.integers(1, 5))
def test_score_viterbi_nbest_match_enumeration(dtype: torch.dtype, a: tuple, k: int) -> None:
    seed, N, T, lengths = a
    c = make_chain(seed, lengths, T, N, dtype)
    paths, best = viterbi(*c)
    kpaths, kscores = nbest(*c, k=k)
    ref_best = viterbi_ref(*c)
    assert paths.shape == (len(lengths), T) and kpaths.shape == (len(lengths), k, T)
    assert int(paths.masked_select(~c[4]).abs().sum()) == 0
    tol = 10 * TOL[dtype]
    for b in range(len(lengths)):
        ranked = sorted((s for _, s in all_paths(c, b)), reverse=True)
        assert abs(float(best[b]) - ranked[0]) < tol * max(1, abs(ranked[0]))
        assert abs(float(ref_best[b]) - ranked[0]) < tol * max(1, abs(ranked[0]))
        L = lengths[b]
        assert abs(path_score(c, b, tuple(paths[b, :L].tolist())) - ranked[0]) < tol * max(1, abs(ranked[0]))
        for r in range(k):
            if r < len(ranked):
                assert abs(float(kscores[b, r]) - ranked[r]) < tol * max(1, abs(ranked[r]))
                assert abs(path_score(c, b, tuple(kpaths[b, r, :L].tolist())) - ranked[r]) < tol * max(1, abs(ranked[r]))
            else:
                assert float(kscores[b, r]) == -math.inf
        got = score(*c[:4], paths, c[4])
        assert abs(float(got[b]) - ranked[0]) < tol * max(1, abs(ranked[0]))


@settings(max_examples=30, deadline=None)
@given(chains)
def test_score_of_random_paths(a: tuple) -> None:
    seed, N, T, lengths = a
    c = make_chain(seed, lengths, T, N)
    tags = torch.randint(0, N, (len(lengths), T), generator=torch.Generator().manual_seed(seed))
    got = score(*c[:4], tags, c[4])
    for b, L in enumerate(lengths):
        assert abs(float(got[b]) - path_score(c, b, tuple(tags[b, :L].tolist()))) < 1e-9


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(chains)
def test_alone_equals_inside_a_padded_batch(dtype: torch.dtype, a: tuple) -> None:
    seed, N, T, lengths = a
    c = make_chain(seed, lengths, T, N, dtype)
    fb, (paths, best), (kp, ks) = forward_backward(*c), viterbi(*c), nbest(*c, k=3)
    lz = log_partition(*c)
    for b, L in enumerate(lengths):
        one = (c[0][b : b + 1, :L], *c[1:4], c[4][b : b + 1, :L])
        fb1, (p1, s1), (kp1, ks1) = forward_backward(*one), viterbi(*one), nbest(*one, k=3)
        assert torch.allclose(fb1.log_z, fb.log_z[b : b + 1], atol=TOL[dtype])
        assert torch.allclose(log_partition(*one), lz[b : b + 1], atol=TOL[dtype])
        assert torch.allclose(fb1.node[0], fb.node[b, :L], atol=TOL[dtype])
        assert torch.allclose(fb1.edge[0], fb.edge[b], atol=TOL[dtype])
        assert torch.equal(p1[0], paths[b, :L]) and torch.allclose(s1[0], best[b], atol=TOL[dtype])
        assert torch.allclose(ks1[0], ks[b], atol=TOL[dtype])
        assert torch.equal(kp1[0][ks1[0] > -math.inf], kp[b, :, :L][ks[b] > -math.inf])


def test_samples_follow_the_chain_distribution() -> None:
    c = make_chain(3, [3, 2, 0], 3, 3)
    n = 20000
    draws = sample(*c, n=n, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (3, n, 3)
    for b, L in enumerate([3, 2, 0]):
        paths = all_paths(c, b)
        log_z = math.log(sum(math.exp(s) for _, s in paths))
        counts: dict[tuple[int, ...], int] = {}
        for row in draws[b, :, :L].tolist():
            counts[tuple(row)] = counts.get(tuple(row), 0) + 1
        assert sum(counts.values()) == n and set(counts) <= {y for y, _ in paths}
        chi2 = sum((counts.get(y, 0) - n * math.exp(s - log_z)) ** 2 / (n * math.exp(s - log_z)) for y, s in paths)
        dof = max(1, len(paths) - 1)
        assert chi2 < dof + 6 * math.sqrt(2 * dof) + 10, (b, chi2, dof)  # ~6 sigma: a wrong sampler fails by far
    assert int(draws[:, :, 2:].masked_select(~c[4][:, 2:].unsqueeze(1).expand(-1, n, -1)).sum()) == 0


def test_samples_are_reproducible_with_a_generator() -> None:
    c = make_chain(1, [4, 2], 4, 3)
    a = sample(*c, n=5, generator=torch.Generator().manual_seed(7))
    b = sample(*c, n=5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("scale", [30.0, 300.0, 3000.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_paths_match_reference_on_large_ranges_and_forbidden_moves(scale: float, dtype: torch.dtype) -> None:
    lengths = [7, 0, 3, 7, 1, 5]
    c = make_chain(11, lengths, 7, 4, dtype, scale)
    e, tr, s, en, mask = c
    tr = tr.masked_fill(torch.tensor([[True, False, False, True]] * 4), float("-inf"))  # states 0, 3 unreachable
    s = s.masked_fill(torch.tensor([False, True, False, False]), float("-inf"))
    e = e.clone()
    e[3, 2, 1:3] = float("-inf")  # row 3: no path at all through t = 2
    c2 = (e, tr, s, en, mask)
    ref = log_partition_ref(*c2)
    fast, fb = log_partition(*c2), forward_backward(*c2)
    assert float(ref[3]) == -math.inf and float(fast[3]) == -math.inf
    finite = torch.isfinite(ref)
    rtol = 1e-5 if dtype == torch.float32 else 1e-10
    assert torch.allclose(fast[finite], ref[finite], rtol=rtol) and torch.allclose(fb.log_z[finite], ref[finite], rtol=rtol)
    for b in finite.nonzero().squeeze(-1).tolist():
        log_z, node, edge = brute_vectorized((e, tr, s, en, mask), b)
        assert abs(float(fb.log_z[b]) - log_z) <= rtol * max(1.0, abs(log_z))
        assert torch.allclose(fb.node[b].double(), node, atol=1e-5)
        assert torch.allclose(fb.edge[b].double(), edge, atol=1e-5)
    assert float(fb.node[3].abs().sum()) == 0.0
    _, best = viterbi(*c2)
    assert torch.allclose(best[finite], viterbi_ref(*c2)[finite], rtol=rtol)


def test_bad_inputs_raise_clear_errors() -> None:
    e, tr, s, en, mask = make_chain(0, [2, 3], 3, 2)
    with pytest.raises(DataError, match="left-aligned"):
        log_partition(e, tr, s, en, torch.tensor([[False, True, True], [True, True, True]]))
    with pytest.raises(DataError, match="transitions"):
        viterbi(e, tr[:1], s, en, mask)
    with pytest.raises(DataError, match="mask"):
        forward_backward(e, tr, s, en, mask.long())
    with pytest.raises(DataError, match="tag ids"):
        score(e, tr, s, en, torch.full((2, 3), 5), mask)


def test_row_chunking_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large batches run in row chunks; force 1-3 rows per chunk and compare with one chunk."""
    import seqlab.inference.fast as fast

    c = make_chain(21, [5, 0, 3, 5, 1, 4, 2], 5, 3)
    e = c[0].clone().requires_grad_(True)
    whole_lz = log_partition(e, *c[1:])
    (whole_lz * torch.arange(7.0, dtype=torch.float64)).sum().backward()
    whole = (forward_backward(*c), viterbi(*c), e.grad.clone())
    for elems in (1, 20, 40):
        monkeypatch.setattr(fast, "_CHUNK_ELEMS", elems)
        e.grad = None
        lz = log_partition(e, *c[1:])
        (lz * torch.arange(7.0, dtype=torch.float64)).sum().backward()
        fb, (paths, best) = forward_backward(*c), viterbi(*c)
        assert torch.allclose(lz, whole_lz) and torch.allclose(e.grad, whole[2])
        assert torch.allclose(fb.node, whole[0].node) and torch.allclose(fb.edge, whole[0].edge)
        assert torch.equal(paths, whole[1][0]) and torch.allclose(best, whole[1][1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ties", [False, True])
def test_compiled_viterbi_equals_the_torch_path(dtype: torch.dtype, ties: bool) -> None:
    """The CPU kernel and the torch-ops path (used on other devices) agree bit for bit, ties
    included (integer scores make many exact ties: both must take the lowest index)."""
    from seqlab.inference.fast import _viterbi_cpu, viterbi_torch

    g = torch.Generator().manual_seed(5)
    lengths = torch.randint(0, 31, (60,), generator=g).tolist()
    e, tr, s, en, mask = make_chain(3, lengths, 30, 7, torch.float64, 2.0)
    if ties:
        e, tr, s, en = (x.round() for x in (e, tr, s, en))
    tr[2, :] = float("-inf")  # a state that cannot be left
    e, tr, s, en = (x.to(dtype) for x in (e, tr, s, en))
    p1, s1 = _viterbi_cpu(e, tr, s, en, mask)
    p2, s2 = viterbi_torch(e, tr, s, en, mask)
    assert torch.equal(p1, p2)
    assert torch.equal(torch.where(mask[:, 0], s1, 0), torch.where(mask[:, 0], s2, 0))


@pytest.mark.parametrize("scale", [1.0, 300.0, 3000.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_filter_matches_the_reference(scale: float, dtype: torch.dtype) -> None:
    """Filtering from the scaled pass = from log-space alphas; the increments add up to the
    log-partition without end scores, and the filtered posteriors normalise."""
    from seqlab.inference import forward_filter, forward_filter_ref

    lengths = [6, 0, 3, 6, 1, 5]
    e, tr, s, _, mask = make_chain(7, lengths, 6, 4, dtype, scale)
    tr = tr.masked_fill(torch.tensor([[False, False, True, False]] * 4), float("-inf"))  # state 2 unreachable
    step, filt = forward_filter(e, tr, s, mask)
    ref_step, ref_filt = forward_filter_ref(e.double(), tr.double(), s.double(), mask)
    rtol = 1e-4 if dtype == torch.float32 else 1e-9
    assert torch.allclose(step.double(), ref_step, rtol=rtol, atol=rtol * scale)
    real = mask.unsqueeze(-1).expand_as(filt) & torch.isfinite(ref_filt)
    assert torch.allclose(filt.double()[real], ref_filt[real], rtol=rtol, atol=rtol * scale)
    assert bool((filt[:, 1:, 2] == float("-inf"))[mask[:, 1:]].all())  # unreachable after the start
    zeros = torch.zeros(4, dtype=torch.float64)
    total = log_partition_ref(e.double(), tr.double(), s.double(), zeros, mask)
    assert torch.allclose(step.double().sum(1), total, rtol=rtol, atol=rtol * scale)
    assert torch.allclose(filt.double().exp().sum(-1)[mask], torch.ones(int(mask.sum()), dtype=torch.float64), atol=1e-5)


def test_the_compiled_kernels_leave_torchs_thread_count_alone() -> None:
    """numba's parallel kernels share torch's OpenMP runtime; a Viterbi call (or a selective scan)
    used to reset torch to every core, so OMP_NUM_THREADS=1 stopped holding after it."""
    import torch

    from seqlab.inference.chain import viterbi
    from seqlab.models.layers.scan import selective_scan

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        e = torch.randn(2, 5, 3, dtype=torch.float64)
        viterbi(e, torch.randn(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                torch.zeros(3, dtype=torch.float64), torch.ones(2, 5, dtype=torch.bool))
        assert torch.get_num_threads() == 1
        u = torch.randn(1, 6, 2, requires_grad=True)
        y, _ = selective_scan(u, torch.rand(1, 6, 2), -torch.rand(2, 3), torch.randn(1, 6, 3), torch.randn(1, 6, 3),
                              impl="kernel")
        y.sum().backward()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
