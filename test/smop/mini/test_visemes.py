"""The mini corpus's mouths follow the phonemes said, the same for every voice."""

import shutil

import numpy as np
import pytest

from smop.mini.grid import all_words
from smop.mini.visemes import PARAMS, PHONEMES, REST, VISEMES, viseme_track, word_phonemes

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")

OPEN, ROUND = PARAMS.index("open"), PARAMS.index("round")


def test_every_grid_word_has_known_phonemes():
    for word in all_words():
        phonemes = word_phonemes(word)
        assert phonemes, word
        assert all(p in PHONEMES for p in phonemes), (word, phonemes)
    assert word_phonemes("a") == ("eI",)  # said as the letter's name, as the corpus speaks it
    assert word_phonemes("bin")[0] == "b"
    assert word_phonemes("one")[0] == "w"


def test_track_shape_range_and_rest_between_words():
    words = [("bin", 0.10, 0.40), ("blue", 0.80, 1.10)]
    track = viseme_track(words, frames=40)
    assert track.shape == (40, len(PARAMS)) and track.dtype == np.float32
    assert track.min() >= -1 and track.max() <= 1
    np.testing.assert_allclose(track[0], REST, atol=1e-6)  # before speech: mouth at rest
    np.testing.assert_allclose(track[15], REST, atol=1e-6)  # 0.62 s, in the pause
    np.testing.assert_allclose(track[-1], REST, atol=1e-6)
    assert track[5:10, OPEN].max() > 0  # the vowel of "bin" opens the mouth


def test_lips_close_on_bilabials_and_round_on_u():
    # "bin": b takes the first quarter of the word's span (b 1, I 2, n 1)
    track = viseme_track([("bin", 0.0, 0.8)], frames=20)
    assert track[1, OPEN] == pytest.approx(VISEMES["bilabial"][OPEN], abs=0.05)
    assert track[1, OPEN] < track[8, OPEN]
    soon = viseme_track([("soon", 0.0, 0.8)], frames=20)  # s u: n
    assert soon[10, ROUND] > 0.8 > track[10, ROUND]


def test_words_differ_and_tracks_depend_only_on_words_and_times():
    tracks = {w: viseme_track([(w, 0.0, 0.5)], frames=13) for w in ("one", "two", "five", "six", "m", "f")}
    names = list(tracks)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(tracks[a] - tracks[b]).max() > 0.3, (a, b)
    again = viseme_track([("six", 0.0, 0.5)], frames=13)
    np.testing.assert_array_equal(again, tracks["six"])
