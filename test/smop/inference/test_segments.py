"""Cutting long recordings into segments: where the cuts fall, and that the segments tile the input."""

import numpy as np
import pytest

from smop.data.inputs import SAMPLES_PER_FRAME
from smop.inference.segments import (
    LEAD_FRAMES,
    LOOKAHEAD_FRAMES,
    cut_points,
    energy_rule,
    join,
    pause_runs,
    pauses,
    split,
)

SPEECH, PAUSE = 1.0, 1e-6  # frame energies: a pause is 60 dB below speech


def energy(*runs):
    """Frame energies from (kind, frames) runs, kind "s" (speech) or "p" (pause)."""
    return np.concatenate([np.full(n, SPEECH if kind == "s" else PAUSE) for kind, n in runs])


def test_without_audio_the_cuts_fall_at_the_limit():
    assert cut_points(100, 30) == [0, 30, 60, 90, 100]
    assert cut_points(30, 30) == [0, 30]
    with pytest.raises(ValueError, match="max_frames must be at least 1"):
        cut_points(10, 0)


def test_a_cut_falls_in_the_first_long_pause_or_a_longer_one_soon_after_where_speech_resumes():
    # 40 frames allowed: the first long pause (frames 20-25) after a quarter of them (10) is taken;
    # a 2-frame gap between words (frames 12-14) is not a pause to cut at, nor is the longer pause at
    # 50-58, which starts more than LOOKAHEAD_FRAMES after the first.
    e = energy(("s", 12), ("p", 2), ("s", 6), ("p", 5), ("s", 25), ("p", 8), ("s", 30))
    cuts = cut_points(e.size, 60, energy_rule(e))
    assert 20 + LOOKAHEAD_FRAMES < 50 and cuts[1] == 25 - LEAD_FRAMES
    assert all(b - a <= 60 for a, b in zip(cuts[:-1], cuts[1:])) and cuts[-1] == e.size
    # A longer pause within LOOKAHEAD_FRAMES of the first long one (a sentence's end after a pause
    # between its words) is taken instead; the next segment starts where speech resumes.
    e = energy(("s", 12), ("p", 2), ("s", 6), ("p", 3), ("s", 5), ("p", 6), ("s", 60))
    assert cut_points(e.size, 40, energy_rule(e))[1] == 34 - LEAD_FRAMES
    assert LEAD_FRAMES == 0


def test_the_rest_of_a_cut_recording_is_cut_at_its_long_pauses_and_a_short_one_is_whole():
    # 3 utterances, 70 frames, limit 50: after the first cut (25), the rest (45 frames) would fit,
    # but holds a long pause: it is cut there too. A recording that fits is never cut.
    e = energy(("s", 20), ("p", 5), ("s", 20), ("p", 5), ("s", 18), ("p", 2))
    assert cut_points(e.size, 50, energy_rule(e)) == [0, 25, 50, 70]
    assert cut_points(e.size, 70, energy_rule(e)) == [0, 70]
    # a long pause at the very end is not cut off: no speech follows it
    assert cut_points(55, 50, energy_rule(energy(("s", 20), ("p", 5), ("s", 22), ("p", 8)))) == [0, 25, 55]


def test_in_steady_noise_the_pauses_are_the_frames_of_noise_alone():
    # Babble 10 dB under the speech never falls 30 dB below it: the frames nearer the noise floor are pauses.
    rng = np.random.default_rng(0)
    noise = 10 ** (rng.normal(-1.0, 0.1, 100))  # about 10 dB under speech, jittered
    e = energy(("s", 30), ("p", 6), ("s", 30), ("p", 6), ("s", 28)) + noise
    runs = pause_runs(pauses(e))
    assert runs == [(30, 36), (66, 72)]
    assert cut_points(e.size, 60, energy_rule(e)) == [0, 36, 72, 100]


def test_only_short_pauses_take_the_longest_and_no_pause_the_quietest_frames():
    e = energy(("s", 12), ("p", 1), ("s", 6), ("p", 2), ("s", 40))
    assert cut_points(e.size, 40, energy_rule(e))[1] == 21 - LEAD_FRAMES  # the 2-frame gap, not the 1-frame one
    steady = np.full(120, SPEECH)
    steady[50:53] = 0.5  # no pause (6 dB down), but the quietest 120 ms
    assert cut_points(steady.size, 60, energy_rule(steady))[1] == 51


def test_split_tiles_the_recording_with_speech_and_video_aligned():
    rng = np.random.default_rng(0)
    frames = 110
    video = rng.integers(0, 255, (frames, 8, 8), dtype=np.uint8)
    e = energy(("s", 50), ("p", 6), ("s", 54))
    speech = (
        rng.standard_normal(frames * SAMPLES_PER_FRAME) * np.repeat(np.sqrt(e / SAMPLES_PER_FRAME), SAMPLES_PER_FRAME)
    ).astype(np.float32)
    segs = split(speech, video, 60)
    assert [(s.start, s.end) for s in segs] == [(0, 56 - LEAD_FRAMES), (56 - LEAD_FRAMES, 110)]
    assert np.array_equal(np.concatenate([s.video for s in segs]), video)
    assert np.array_equal(np.concatenate([s.speech for s in segs]), speech)
    assert all(s.speech.size == (s.end - s.start) * SAMPLES_PER_FRAME for s in segs)
    assert segs[1].seconds == (2.24, 4.4)
    # audio alone: frames counted from the samples (the last one partial)
    alone = split(speech[:-100], None, 60)  # 109.8 frames
    assert alone[-1].end == frames and alone[-1].video is None
    assert np.array_equal(np.concatenate([s.speech for s in alone]), speech[:-100])
    with pytest.raises(ValueError, match="no speech and no video"):
        split(None, None, 60)


def test_join_leaves_out_blank_segments():
    assert join(["set blue", " ", "by k three "]) == "set blue by k three"


def test_a_last_segment_too_short_for_the_audio_encoder_is_padded_to_a_whole_frame():
    # The segment limit plus 100 samples, ending in a pause: the last segment holds 100 samples.
    rng = np.random.default_rng(1)
    speech = np.concatenate([rng.standard_normal(58 * SAMPLES_PER_FRAME), np.zeros(2 * SAMPLES_PER_FRAME + 100)])
    segs = split(speech, None, 60, min_samples=201)
    assert [(s.start, s.end) for s in segs][-1] == (60, 61)
    assert segs[-1].speech.size == SAMPLES_PER_FRAME and not segs[-1].speech.any()
    assert np.array_equal(np.concatenate([s.speech for s in segs])[: speech.size], speech)
    assert split(speech, None, 60)[-1].speech.size == 100  # without a minimum, left as it is
    assert split(speech[:100], None, 60, min_samples=201)[0].speech.size == 100  # a short recording is not padded
