"""Mouth shapes from the words said: espeak-ng phonemes -> visemes -> a track at the video rate.

Lips show what is said, not who says it: driving the synthetic mouth from the phonemes (placed
within each word's time span) rather than from the voice's spectrum makes the picture the same
for every voice, as a real face's is, so a lip reader trained on some voices works on new ones.
Like real lips, the mapping is many-to-one (p/b/m, t/d/n, k/g look alike).
"""

import functools
import re
import subprocess
from typing import Dict, List, Sequence, Tuple

import numpy as np

# Parameters per frame (as face.render reads them), each in [-1, 1]:
# open, spread, upper lip raise, lower lip drop, corner skew, rounding, teeth, tongue.
PARAMS = ("open", "spread", "upper", "lower", "skew", "round", "teeth", "tongue")
REST = (-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

# Viseme classes (targets) and the espeak-ng phonemes (``espeak-ng -x``) that show them.
VISEMES: Dict[str, Tuple[float, ...]] = {
    # consonants
    "bilabial": (-1.0, 0.0, -0.6, -0.6, 0.0, 0.1, -1.0, -1.0),  # p b m: lips pressed
    "labiodental": (-0.6, 0.1, 0.6, -0.9, 0.0, -0.2, 1.0, -1.0),  # f v: lower lip under the teeth
    "dental": (-0.3, 0.2, 0.2, 0.0, 0.0, 0.0, 0.5, 1.0),  # th: tongue between the teeth
    "alveolar": (-0.4, 0.3, 0.0, 0.0, 0.0, 0.0, 0.4, 0.6),  # t d n
    "lateral": (-0.1, 0.2, 0.0, 0.2, 0.0, 0.0, 0.3, 1.0),  # l
    "sibilant": (-0.6, 0.7, 0.2, 0.0, 0.0, -0.3, 1.0, -0.6),  # s z: teeth together, spread
    "postalveolar": (-0.4, -0.4, 0.4, 0.2, 0.0, 0.8, 0.9, -0.6),  # sh ch j: protruded
    "velar": (0.0, 0.0, 0.0, 0.3, 0.0, 0.0, -0.4, -1.0),  # k g ng h: open, nothing visible
    "rhotic": (-0.3, -0.3, 0.1, 0.0, 0.3, 0.6, 0.2, -0.2),  # r
    "glide_w": (-0.6, -0.8, 0.0, 0.0, 0.0, 1.0, -1.0, -1.0),  # w: tight rounding
    "glide_j": (-0.4, 0.8, 0.0, 0.0, -0.3, -0.4, 0.6, 0.4),  # y
    # vowels
    "i": (-0.1, 1.0, 0.1, 0.0, 0.0, -0.6, 0.7, 0.3),
    "I": (0.1, 0.6, 0.0, 0.1, 0.0, -0.3, 0.4, 0.2),
    "e": (0.4, 0.6, 0.0, 0.3, 0.0, -0.3, 0.3, 0.1),
    "a": (1.0, 0.3, 0.0, 0.6, 0.0, -0.1, 0.0, -0.3),
    "A": (0.9, -0.2, -0.2, 0.9, 0.0, 0.2, -0.3, -0.6),
    "V": (0.6, 0.0, 0.0, 0.4, 0.0, 0.0, 0.0, -0.2),
    "schwa": (0.2, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0),
    "O": (0.6, -0.6, 0.0, 0.5, 0.0, 0.7, -0.5, -0.5),
    "o": (0.3, -0.7, 0.0, 0.2, 0.0, 0.9, -0.6, -0.5),
    "U": (0.0, -0.6, 0.0, 0.0, 0.0, 0.7, -0.5, -0.4),
    "u": (-0.3, -0.9, 0.0, 0.0, 0.0, 1.0, -0.8, -0.6),
    "3": (0.2, -0.2, 0.0, 0.1, 0.3, 0.4, 0.0, 0.0),
}
PHONEMES: Dict[str, Sequence[str]] = {
    "p": ["bilabial"],
    "b": ["bilabial"],
    "m": ["bilabial"],
    "f": ["labiodental"],
    "v": ["labiodental"],
    "T": ["dental"],
    "D": ["dental"],
    "t": ["alveolar"],
    "d": ["alveolar"],
    "n": ["alveolar"],
    "t#": ["alveolar"],
    "l": ["lateral"],
    "L": ["lateral"],
    "s": ["sibilant"],
    "z": ["sibilant"],
    "S": ["postalveolar"],
    "Z": ["postalveolar"],
    "tS": ["postalveolar"],
    "dZ": ["postalveolar"],
    "k": ["velar"],
    "g": ["velar"],
    "N": ["velar"],
    "h": ["velar"],
    "x": ["velar"],
    "r": ["rhotic"],
    "w": ["glide_w"],
    "j": ["glide_j"],
    "i:": ["i"],
    "i": ["i"],
    "I": ["I"],
    "I2": ["I"],
    "I#": ["I"],
    "e": ["e"],
    "E": ["e"],
    "a": ["a"],
    "a#": ["schwa"],
    "A:": ["A"],
    "A": ["A"],
    "0": ["O"],
    "V": ["V"],
    "@": ["schwa"],
    "@2": ["schwa"],
    "O:": ["O"],
    "O": ["O"],
    "o": ["o"],
    "U": ["U"],
    "u:": ["u"],
    "3:": ["3"],
    "3": ["3"],
    "eI": ["e", "I"],
    "aI": ["a", "I"],
    "aI2": ["a", "I"],
    "OI": ["O", "I"],
    "aU": ["a", "U"],
    "oU": ["o", "U"],
    "i@": ["i", "schwa"],
    "i@3": ["i", "schwa"],
    "e@": ["e", "schwa"],
    "U@": ["U", "schwa"],
    "@L": ["schwa", "lateral"],
    "@5": ["schwa", "lateral"],
}
VOWELS = frozenset(("i", "I", "e", "a", "A", "V", "schwa", "O", "o", "U", "u", "3"))
_SYMBOLS = sorted(PHONEMES, key=len, reverse=True)
_MARKS = re.compile(r"[',%=_!|]")
RATE = 100  # Hz of the internal track


@functools.lru_cache(maxsize=None)
def word_phonemes(word: str) -> Tuple[str, ...]:
    """espeak-ng's phonemes of ``word`` in one fixed voice (en-us): what the lips do does not depend
    on who speaks. The lone letter "a" is said by its name, as the corpus speaks it."""
    if word == "a":
        return ("eI",)
    out = subprocess.run(["espeak-ng", "-q", "-x", "-v", "en-us", word], check=True, capture_output=True, text=True)
    text = _MARKS.sub("", out.stdout.strip())
    symbols, i = [], 0
    while i < len(text):
        match = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
        if match is None:  # a stress digit or an unlisted symbol: no mouth shape of its own
            i += 1
            continue
        symbols.append(match)
        i += len(match)
    if not symbols:
        raise ValueError(f"espeak-ng gave no known phonemes for {word!r}: {out.stdout!r}")
    return tuple(symbols)


def _targets(word: str) -> List[Tuple[str, float]]:
    """(viseme, relative duration) in order: vowels last about twice as long as consonants."""
    out = []
    for ph in word_phonemes(word):
        parts = PHONEMES[ph]
        length = (2.0 if parts[0] in VOWELS else 1.0) * (1.5 if len(parts) > 1 else 1.0)  # diphthongs longer
        out += [(part, length / len(parts)) for part in parts]
    return out


def viseme_track(words: Sequence[Tuple[str, float, float]], frames: int, fps: int = 25) -> np.ndarray:
    """(frames, 8) mouth parameters for ``words`` = (word, start s, end s), rest between words."""
    n = int(np.ceil(frames * RATE / fps)) + 1
    track = np.tile(np.asarray(REST, np.float32), (n, 1))
    for word, start, end in words:
        targets = _targets(word)
        weights = np.array([w for _, w in targets])
        edges = start + np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum() * (end - start)
        for (viseme, _), a, b in zip(targets, edges[:-1], edges[1:]):
            lo, hi = int(round(a * RATE)), max(int(round(b * RATE)), int(round(a * RATE)) + 1)
            track[lo:hi] = VISEMES[viseme]
    # Coarticulation: lips move towards the next shape before it sounds (a 60 ms Hann window).
    kernel = np.hanning(8)[1:-1]
    kernel /= kernel.sum()
    half = kernel.size // 2
    padded = np.pad(track, ((half, kernel.size - 1 - half), (0, 0)), mode="edge")  # at rest beyond the ends
    smooth = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(track.shape[1])], axis=1)
    centres = np.minimum(((np.arange(frames) + 0.5) * RATE / fps).astype(int), n - 1)
    return np.clip(smooth[centres], -1, 1).astype(np.float32)
