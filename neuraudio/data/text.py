"""Sentences for synthetic speech, from a small English grammar over word lists written here.

Statements, questions, commands, lists, numbers, times and dates, with optional clauses, so utterances vary in
length (about 1 to 6 seconds spoken), rhythm and intonation. Deterministic for a given ``numpy.random.Generator``.

    >>> sentence(np.random.default_rng(0))      # e.g. 'The quiet engineer painted seven wooden boxes near ...'
"""

from __future__ import annotations

import numpy as np

WORDS = {
    "adj": "quiet bright heavy small old green sudden gentle narrow warm careful distant golden wooden silver broken "
           "empty strange simple early late rapid patient curious soft loud cold tired happy busy".split(),
    "person": "engineer teacher farmer driver singer doctor painter baker pilot student neighbour captain writer "
              "gardener nurse musician sailor builder".split(),
    "thing": "box window letter garden river bridge lamp basket kettle ladder wagon carpet engine table bottle "
             "mirror blanket violin bicycle hammer".split(),
    "place": "station market harbour library kitchen village valley museum garage forest airport theatre "
             "factory office castle".split(),
    "verb_past": "painted carried opened repaired found watched cleaned moved dropped counted measured "
                 "borrowed followed noticed covered packed".split(),
    "verb": "paint carry open repair find watch clean move drop count measure borrow follow notice cover pack".split(),
    "adv": "slowly quickly carefully quietly suddenly gladly barely nearly always never often".split(),
    "prep": "near behind under beside above inside across beyond".split(),
    "name": "Anna Peter Maria David Grace Tom Julia Samuel Nora Victor Helen Oscar Lucy Martin Alice Felix".split(),
}
TIMES = ("this morning", "yesterday", "at noon", "last winter", "before dinner", "after the storm", "on Monday",
         "at midnight", "every evening", "in the spring")
NUMBERS = ("one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty a hundred "
           "a thousand").split(" ")
MONTHS = "January February March April May June July August September October November December".split()


def _plural(word: str) -> str:
    return word + "es" if word.endswith(("s", "x", "ch", "sh")) else word + "s"


def _pick(rng: np.random.Generator, items) -> str:
    return items[int(rng.integers(len(items)))]


def _noun_phrase(rng: np.random.Generator, kind: str) -> str:
    words = ["the"]
    if rng.random() < 0.6:
        words.append(_pick(rng, WORDS["adj"]))
    words.append(_pick(rng, WORDS[kind]))
    return " ".join(words)


def _statement(rng):
    subject = _pick(rng, WORDS["name"]) if rng.random() < 0.4 else _noun_phrase(rng, "person")
    parts = [subject]
    if rng.random() < 0.3:
        parts.append(_pick(rng, WORDS["adv"]))
    count = _pick(rng, NUMBERS[1:11]) if rng.random() < 0.4 else None
    obj = f"{count} {_pick(rng, WORDS['adj'])} {_plural(_pick(rng, WORDS['thing']))}" if count else _noun_phrase(rng, "thing")
    parts += [_pick(rng, WORDS["verb_past"]), obj]
    if rng.random() < 0.6:
        parts += [_pick(rng, WORDS["prep"]), _noun_phrase(rng, "place")]
    if rng.random() < 0.4:
        parts.append(_pick(rng, TIMES))
    if rng.random() < 0.25:
        parts += ["because", _statement(rng)[:-1]]
    return " ".join(parts) + "."


def _question(rng):
    forms = [
        lambda: f"did {_pick(rng, WORDS['name'])} {_pick(rng, WORDS['verb'])} {_noun_phrase(rng, 'thing')} "
                f"{_pick(rng, TIMES)}?",
        lambda: f"where is {_noun_phrase(rng, 'thing')} that {_noun_phrase(rng, 'person')} "
                f"{_pick(rng, WORDS['verb_past'])}?",
        lambda: f"how many {_plural(_pick(rng, WORDS['thing']))} are {_pick(rng, WORDS['prep'])} {_noun_phrase(rng, 'place')}?",
        lambda: f"why would anyone {_pick(rng, WORDS['verb'])} {_noun_phrase(rng, 'thing')}?",
    ]
    return _pick(rng, forms)()


def _command(rng):
    return (f"please {_pick(rng, WORDS['verb'])} {_noun_phrase(rng, 'thing')} {_pick(rng, WORDS['adv'])}, "
            f"and meet me {_pick(rng, WORDS['prep'])} {_noun_phrase(rng, 'place')}.")


def _numbers(rng):
    forms = [
        lambda: f"the train leaves at {_pick(rng, NUMBERS[:12])} {_pick(rng, ['fifteen', 'thirty', 'forty five', 'oh five'])}.",
        lambda: f"call {_pick(rng, WORDS['name'])} on {' '.join(_pick(rng, NUMBERS[:10]) for _ in range(6))}.",
        lambda: f"it happened on the {_pick(rng, ['first', 'second', 'third', 'ninth', 'twentieth'])} of "
                f"{_pick(rng, MONTHS)}, {_pick(rng, ['nineteen eighty', 'two thousand and four', 'twenty twenty'])}.",
        lambda: f"we counted {_pick(rng, NUMBERS)} {_plural(_pick(rng, WORDS['thing']))} and "
                f"{_pick(rng, NUMBERS)} {_plural(_pick(rng, WORDS['person']))}.",
    ]
    return _pick(rng, forms)()


def _listing(rng):
    items = [_noun_phrase(rng, "thing") for _ in range(int(rng.integers(3, 5)))]
    return f"bring {', '.join(items[:-1])} and {items[-1]}."


KINDS = ((_statement, 0.45), (_question, 0.2), (_command, 0.12), (_numbers, 0.13), (_listing, 0.1))


def sentence(rng: np.random.Generator) -> str:
    """One sentence (lower case but for names, with its final punctuation)."""
    weights = np.array([w for _, w in KINDS])
    kind = KINDS[int(rng.choice(len(KINDS), p=weights / weights.sum()))][0]
    text = kind(rng)
    return text[0].upper() + text[1:]
