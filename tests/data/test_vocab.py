import pytest

from seqlab.data.vocab import SPECIALS, Vocab
from seqlab.errors import ConfigError


def test_specials_first_then_frequency_then_first_appearance() -> None:
    v = Vocab.build([["b", "a", "c"], ["a", "c", "d"], ["a"]])
    assert v.itos[:5] == list(SPECIALS)
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id, v.mask_id) == (0, 1, 2, 3, 4)
    assert v.itos[5:] == ["a", "c", "b", "d"]  # a:3, c:2, then b and d tie (b first seen)
    assert v.encode(["a", "zzz"]) == [5, 1]
    assert v.decode([5, 6]) == ["a", "c"]


def test_min_freq_and_max_size() -> None:
    v = Vocab.build([["a", "a", "b", "c", "c", "c"]], min_freq=2, max_size=1)
    assert v.itos[5:] == ["c"]
    with pytest.raises(ConfigError):
        Vocab.build([], min_freq=0)


def test_label_vocab_has_no_specials_and_rejects_unknowns() -> None:
    v = Vocab(["O", "B-X"], specials=False)
    assert v.encode(["B-X", "O"]) == [1, 0]
    with pytest.raises(ConfigError, match="unknown label"):
        v.encode(["I-Y"])
    with pytest.raises(ConfigError):
        _ = v.pad_id


def test_json_round_trip() -> None:
    v = Vocab.build([["x", "y", "x"]])
    assert Vocab.from_json(v.to_json()) == v
    lab = Vocab(["a"], specials=False)
    assert Vocab.from_json(lab.to_json()).has_specials is False
