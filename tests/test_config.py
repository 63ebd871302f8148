from dataclasses import dataclass, field
from typing import Literal

import pytest

from seqlab.config import from_dict, merge, parse_overrides
from seqlab.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    kind: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    hidden: int = 8
    flag: bool = False
    sizes: tuple[int, ...] = (1, 2)
    maybe: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_from_dict_converts_cli_strings() -> None:
    cfg = from_dict(Outer, {"hidden": "16", "flag": "true", "sizes": "3,4", "maybe": "none", "inner": {"lr": "0.5", "kind": "b"}})
    assert cfg == Outer(16, True, (3, 4), None, Inner(0.5, "b"))


def test_unknown_key_lists_valid_ones() -> None:
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, {"hiden": 3})
    assert "'hiden'" in str(e.value) and "hidden" in str(e.value) and "flag" in str(e.value)


@pytest.mark.parametrize("bad", [{"hidden": "x"}, {"flag": "maybe"}, {"inner": {"kind": "c"}}, {"hidden": True}])
def test_bad_values_raise_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        from_dict(Outer, bad)


def test_parse_overrides_and_merge() -> None:
    got = parse_overrides(["--model.hidden_size", "256", "--train.lr=1e-3", "--model.bidirectional", "--task.name", "x"])
    assert got == {"model": {"hidden_size": 256, "bidirectional": True}, "train": {"lr": 1e-3}, "task": {"name": "x"}}
    assert merge({"model": {"a": 1, "b": 2}}, {"model": {"b": 3}}) == {"model": {"a": 1, "b": 3}}
    with pytest.raises(ConfigError):
        parse_overrides(["model.x", "1"])


def test_range_checks_name_the_field_and_the_bound() -> None:
    from seqlab.config import check_at_least, check_fraction

    @dataclass
    class C:
        layers: int = 2
        dropout: float = 0.1

    check_at_least(C(), 1, "layers")
    check_fraction(C(), "dropout")
    with pytest.raises(ConfigError, match=r"layers must be >= 3, found 2"):
        check_at_least(C(), 3, "layers")
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError, match=r"dropout must be in \[0, 1\)"):
            check_fraction(C(dropout=bad), "dropout")
