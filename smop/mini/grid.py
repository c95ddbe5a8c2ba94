"""GRID-style sentences: command colour preposition letter digit adverb."""

import random
from typing import List

COMMANDS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple("abcdefghijklmnopqrstuvxyz")  # 25 letters, no w (as in GRID)
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")
SLOTS = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)


def sample_sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(slot) for slot in SLOTS)


def all_words() -> List[str]:
    return sorted({w for slot in SLOTS for w in slot})


def speakable(sentence: str) -> str:
    """Text for espeak-ng: a lone "a" is read as the article, so give its letter name as phonemes."""
    return " ".join("[[eI]]" if w == "a" else w for w in sentence.split())
