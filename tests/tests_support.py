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
