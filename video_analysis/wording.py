"""Counts and lists in plain English, for the texts people read (summaries, track descriptions, answers)."""

from __future__ import annotations

# Detector class names whose plural is not "+s": COCO's irregular and invariant nouns.
_IRREGULAR = {"person": "people", "mouse": "mice", "knife": "knives", "sheep": "sheep", "skis": "skis",
              "scissors": "scissors", "broccoli": "broccoli", "wine glass": "wine glasses"}


def plural(noun: str) -> str:
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def count(n: int, noun: str) -> str:
    """``count(1, "second")`` is "1 second", ``count(6, "person")`` is "6 people"."""
    return f"{n} {noun if n == 1 else plural(noun)}"


def article(phrase: str) -> str:
    """"a person", "an orange car" (by the first letter: good enough for detector and colour words)."""
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"


def listing(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"
