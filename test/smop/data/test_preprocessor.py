import numpy as np
import pytest
import soundfile

from smop.data.loaders import DataError
from smop.data.noise import mix_at_snr
from smop.data.preprocessor import SmopPreprocessor, adaptive_time_mask


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0])
def test_mix_reaches_the_snr_exactly(snr):
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(16000).astype(np.float32)
    noise = rng.standard_normal(5000).astype(np.float32)
    mixed = mix_at_snr(speech, noise, snr, offset=1234)
    added = mixed.astype(np.float64) - speech
    measured = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(added**2))
    assert measured == pytest.approx(snr, abs=1e-3)
    # the noise wraps around from the offset
    idx = (1234 + np.arange(16000)) % 5000
    assert np.corrcoef(added, noise[idx])[0, 1] > 0.999


def test_zero_db_is_not_clean():
    # The public pipelines treat SNR 0 as "no target" (a truth test); here only None is clean.
    speech = np.ones(100, np.float32)
    assert not np.allclose(mix_at_snr(speech, np.arange(7, dtype=np.float32), 0.0, 0), speech)
    assert mix_at_snr(speech, np.arange(7, dtype=np.float32), None, 0) is speech


def test_video_center_crop_and_normalisation():
    p = SmopPreprocessor(False, None)
    frames = np.zeros((3, 96, 96), np.uint8)
    frames[:, 4:92, 4:92] = 255
    out = p("u", {"video": frames})["video"]
    assert out.shape == (3, 88, 88) and out.dtype == np.float32
    assert np.allclose(out, (1.0 - 0.421) / 0.165)  # the centred 88x88 window is all white


def test_training_augments_speech(tmp_path):
    noise = np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    soundfile.write(tmp_path / "babble.wav", noise, 16000)
    p = SmopPreprocessor(True, None, noise_file=str(tmp_path / "babble.wav"), noise_snrs=[0.0], audio_mask_max=0.0)
    speech = np.sin(np.arange(16000) / 5).astype(np.float32)
    out = p("u", {"speech": speech})["speech"]
    measured = 10 * np.log10(np.mean(speech**2) / np.mean((out - speech) ** 2))
    assert measured == pytest.approx(0.0, abs=0.01)
    assert np.array_equal(
        SmopPreprocessor(False, None, noise_file=str(tmp_path / "babble.wav"))("u", {"speech": speech})["speech"],
        speech,
    )


class _Recorder:
    """A numpy Generator that records the sizes it is asked for."""

    def __init__(self, rng):
        self.rng, self.sizes = rng, []

    def integers(self, low, high=None, size=None):
        self.sizes.append(size)
        return self.rng.integers(low, high, size=size)


@pytest.mark.parametrize("frames,spans", [(1, 1), (10, 1), (25, 1), (26, 2), (50, 2), (51, 3), (150, 6)])
def test_one_time_mask_per_started_second(frames, spans):
    rng = _Recorder(np.random.default_rng(0))
    adaptive_time_mask(np.ones(frames), 10, 25, rng)
    assert rng.sizes[0] == (spans, 2)


def test_time_mask_spans_are_drawn_as_auto_avsr_draws_them():
    """Two draws below the window per span: one bounds the start, the other is the length, cut at the end.

    The share of trials that mask each frame of a one-second clip matches the exact probability.
    """
    n, window, trials = 25, 10, 20000
    exact = np.zeros(n)
    for bound in range(1, window):  # bound 0 masks nothing
        for length in range(window):
            for start in range(n - bound):
                exact[start : start + length] += 1 / (window * window * (n - bound))
    rng = np.random.default_rng(0)
    masked = np.zeros(n)
    lengths = set()
    for _ in range(trials):
        zero = adaptive_time_mask(np.ones(n), window, 25, rng) == 0
        masked += zero
        lengths.add(int(zero.sum()))
    np.testing.assert_allclose(masked / trials, exact, atol=0.012)
    assert exact[-1] > 0.05 and lengths == set(range(window))  # spans reach the end; up to window - 1 long


def test_masked_video_frames_are_black():
    """Masked before the normalisation: a masked frame is (0 - mean) / std, the others untouched."""
    p = SmopPreprocessor(True, None, video_mask_max=0.4)
    black = (0.0 - 0.421) / 0.165
    masked = []
    for i in range(50):
        out = p(f"u{i}", {"video": np.full((60, 96, 96), 200, np.uint8)})["video"]
        frames = out.reshape(60, -1)
        is_black = np.isclose(frames, black).all(1)
        assert (is_black | np.isclose(frames, (200 / 255 - 0.421) / 0.165).all(1)).all()
        masked.append(int(is_black.sum()))
    # three spans (60 frames = 3 started seconds) of at most 9 frames each, none in some clips
    assert max(masked) <= 27 and min(masked) < np.mean(masked) and np.mean(masked) > 3
    assert (
        SmopPreprocessor(True, None, video_mask_max=0.0)("u", {"video": np.full((60, 96, 96), 200, np.uint8)})[
            "video"
        ].min()
        > 0
    )


def test_audio_is_masked_before_the_noise(tmp_path):
    """Masked spans hold the noise, as in auto_avsr (its mask comes before AddNoise), not silence."""
    soundfile.write(tmp_path / "hum.wav", np.full(16000, 0.5, np.float32), 16000)
    p = SmopPreprocessor(True, None, noise_file=str(tmp_path / "hum.wav"), noise_snrs=[0.0], audio_mask_max=0.4)
    levels = set()
    for i in range(10):
        out = p(f"u{i}", {"speech": np.ones(48000, np.float32)})["speech"]
        assert not (out == 0).any()
        levels.add(len(np.unique(out)))
    assert 2 in levels and levels <= {1, 2}  # speech + noise, and noise alone where masked
    clean = SmopPreprocessor(True, None, audio_mask_max=0.4)
    zeros = [int((clean(f"u{i}", {"speech": np.ones(48000, np.float32)})["speech"] == 0).sum()) for i in range(20)]
    assert 0 < max(zeros) <= 3 * 6399


def test_text_errors_name_the_utterance():
    p = SmopPreprocessor(False, lambda t: [len(w) for w in t.split()])
    assert p("u", {"text": " ab c "})["text"].tolist() == [2, 1]
    with pytest.raises(DataError, match="utt7: empty transcript"):
        p("utt7", {"text": "  "})
    with pytest.raises(DataError, match="smaller than crop_size"):
        p("u", {"video": np.zeros((2, 80, 80), np.uint8)})


def test_modality_dropout_blanks_one_modality_in_training_only():
    speech, video = np.ones(16000, np.float32), np.full((25, 96, 96), 200, np.uint8)
    p = SmopPreprocessor(True, None, audio_mask_max=0.0, video_mask_max=0.0, modality_dropout=0.5)
    blanked = {"speech": 0, "video": 0, "none": 0}
    for i in range(400):
        out = p(f"u{i}", {"speech": speech, "video": video})
        a, v = not out["speech"].any(), not out["video"].any()
        assert not (a and v) and out["speech"].shape == (16000,) and out["video"].shape == (25, 88, 88)
        blanked["speech" if a else "video" if v else "none"] += 1
    assert 150 < blanked["none"] < 250 and 60 < blanked["speech"] < 140 and 60 < blanked["video"] < 140
    # one modality alone is never blanked, and evaluation never blanks
    assert p("u", {"speech": speech})["speech"].all()
    out = SmopPreprocessor(False, None, modality_dropout=1.0)("u", {"speech": speech, "video": video})
    assert out["speech"].all() and out["video"].any()
    with pytest.raises(ValueError, match="modality_dropout"):
        SmopPreprocessor(True, None, modality_dropout=1.5)
