"""Feature templates on hand examples; the vectorised extractor against the one-token reference."""

import zlib
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.errors import ConfigError, DataError
from seqlab.models.classical.features import (
    FeatureConfig,
    FeatureExtractor,
    token_features_ref,
    word_shape,
)

SMALL = FeatureConfig(prefixes=(2,), suffixes=(3,), window=1)


def test_word_shape_hand_examples() -> None:
    assert word_shape("Paris") == "Xxxxx"
    assert word_shape("Washington") == "Xxxxx"
    assert word_shape("12") == "dd"
    assert word_shape("2016-05") == "dddd-dd"
    assert word_shape("McDonald's") == "XxXxxxx'x"
    assert word_shape("McDonald's", 1) == "XxXx'x"
    assert word_shape("USA", 1) == "X"
    assert word_shape("") == ""


def test_templates_on_a_hand_example() -> None:
    feats = token_features_ref(["Obama", "visited", "Paris"], SMALL)
    assert len(feats) == 3
    assert {n for n, _ in feats[0]} == {
        "bias", "w=Obama", "lw=obama", "p2=Ob", "s3=ama", "sh=Xxxxx", "ss=Xx",
        "w[-1]=<s>", "w[+1]=visited", "ss[+1]=x",
    }
    assert {n for n, _ in feats[2]} == {
        "bias", "w=Paris", "lw=paris", "p2=Pa", "s3=ris", "sh=Xxxxx", "ss=Xx",
        "w[-1]=visited", "ss[-1]=x", "w[+1]=</s>",
    }
    assert all(v == 1.0 for f in feats for _, v in f)


def test_window_at_sentence_edges_and_short_words() -> None:
    cfg = FeatureConfig(window=2, window_shape=False, prefixes=(1, 3), suffixes=())
    (only,) = token_features_ref(["Hi"], cfg)
    names = {n for n, _ in only}
    assert {"w[-2]=<s>", "w[-1]=<s>", "w[+1]=</s>", "w[+2]=</s>", "p1=H"} <= names
    assert not any(n.startswith("p3=") for n in names)  # "Hi" is shorter than 3
    first, second, third = token_features_ref(["a", "B", "c"], cfg)
    assert {"w[-2]=<s>", "w[-1]=<s>", "w[+1]=b", "w[+2]=c"} <= {n for n, _ in first}
    assert {"w[-2]=<s>", "w[-1]=a", "w[+1]=c", "w[+2]=</s>"} <= {n for n, _ in second}


def _decode(ext: FeatureExtractor, sentences: list[list[str]]) -> list[dict[str, float]]:
    feats = ext.transform(sentences)
    names = ext.names()
    out = []
    for r in range(feats.matrix.shape[0]):
        row = feats.matrix.getrow(r)
        out.append({names[c]: v for c, v in zip(row.indices, row.data)})
    return out


def _ref_dicts(sentences: list[list[str]], cfg: FeatureConfig, fns: tuple = ()) -> list[dict[str, float]]:
    out = []
    for s in sentences:
        for f in token_features_ref(s, cfg, fns):
            d: Counter[str] = Counter()
            for n, v in f:
                d[n] += v
            out.append(dict(d))
    return out


def _is_digit_fn(tokens, i):
    if tokens[i].isdigit():
        yield ("num", 0.5)
    yield "len=" + str(len(tokens[i]))


words = st.text(alphabet="aAb1-", min_size=1, max_size=5)
sentences = st.lists(st.lists(words, min_size=0, max_size=5), min_size=1, max_size=4)
configs = st.builds(FeatureConfig, bias=st.booleans(), word=st.booleans(), prefixes=st.sampled_from([(), (1,), (1, 2, 4)]),
                    suffixes=st.sampled_from([(), (2,)]), shape=st.booleans(), window=st.integers(0, 2),
                    window_shape=st.booleans())


@settings(max_examples=60, deadline=None)
@given(sentences, configs, st.booleans())
def test_vectorised_extraction_matches_reference(sents: list, cfg: FeatureConfig, user: bool) -> None:
    fns = (_is_digit_fn,) if user else ()
    ext = FeatureExtractor(cfg, fns).fit(sents)
    feats = ext.transform(sents)
    assert feats.matrix.shape == (sum(map(len, sents)), len(ext.names()))
    assert feats.offsets.tolist() == np.cumsum([0] + [len(s) for s in sents]).tolist()
    assert _decode(ext, sents) == _ref_dicts(sents, cfg, fns)


@settings(max_examples=30, deadline=None)
@given(sentences, sentences, st.integers(1, 3))
def test_min_freq_and_unseen_features(train: list, test: list, min_freq: int) -> None:
    cfg = FeatureConfig(window=1, min_freq=min_freq)
    ext = FeatureExtractor(cfg).fit(train)
    counts = Counter(n for s in train for f in token_features_ref(s, cfg) for n, _ in f)
    assert set(ext.names()) == {n for n, c in counts.items() if c >= min_freq}
    want = [{n: v for n, v in d.items() if n in set(ext.names())} for d in _ref_dicts(test, cfg)]
    assert _decode(ext, test) == want


def test_hashing_puts_each_name_in_its_crc32_bucket() -> None:
    cfg = FeatureConfig(n_buckets=64, window=1)
    sents = [["Obama", "visited", "Paris"], ["in", "2016"]]
    feats = FeatureExtractor(cfg).fit(sents).transform(sents)
    assert feats.matrix.shape == (5, 64)
    for r, names in enumerate(_ref_dicts(sents, cfg)):
        want: Counter[int] = Counter()
        for n, v in names.items():
            want[zlib.crc32(n.encode()) % 64] += v
        row = feats.matrix.getrow(r)
        assert dict(zip(row.indices.tolist(), row.data.tolist())) == dict(want)


def test_bad_settings_and_bad_user_output() -> None:
    with pytest.raises(ConfigError, match="min_freq"):
        FeatureConfig(n_buckets=8, min_freq=2)
    with pytest.raises(ConfigError, match="window"):
        FeatureConfig(window=-1)
    with pytest.raises(DataError, match="user feature function 0"):
        FeatureExtractor(FeatureConfig(), (lambda toks, i: [3],)).fit([["a"]])
