"""Small data the tests make for themselves."""

import random


def ner_data(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    names, places, words = ["Ann", "Bob", "Cid", "Dee"], ["Rome", "Oslo", "Lima"], ["saw", "left", "loves", "the", "city"]
    out = []
    for _ in range(n):
        toks, tags = [rng.choice(names)], ["B-PER"]
        for _ in range(rng.randint(1, 5)):
            if rng.random() < 0.3:
                toks.append(rng.choice(places))
                tags.append("B-LOC")
            else:
                toks.append(rng.choice(words))
                tags.append("O")
        out.append({"tokens": toks, "tags": tags})
    return out


def valid_iob2(tags: list[str]) -> bool:
    """No I-X after O, after B-Y or I-Y (Y != X), or at the start: written independently of the
    library's constraint code, so tests can check it."""
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            return False
        prev = t
    return True
