import numpy as np
import pytest
import soundfile

from smop.data.loaders import DataError
from smop.data.noise import mix_at_snr
from smop.data.preprocessor import SmopPreprocessor


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
    p = SmopPreprocessor(True, None, noise_file=str(tmp_path / "babble.wav"), noise_snrs=[0.0],
                         audio_mask_max=0.0)
    speech = np.sin(np.arange(16000) / 5).astype(np.float32)
    out = p("u", {"speech": speech})["speech"]
    measured = 10 * np.log10(np.mean(speech**2) / np.mean((out - speech) ** 2))
    assert measured == pytest.approx(0.0, abs=0.01)
    assert np.array_equal(SmopPreprocessor(False, None, noise_file=str(tmp_path / "babble.wav"))("u", {"speech": speech})["speech"], speech)


def test_time_mask_zeroes_spans():
    p = SmopPreprocessor(True, None, audio_mask_max=0.4, video_mask_max=0.0)
    out = p("u", {"speech": np.ones(48000, np.float32)})["speech"]
    zeros = int((out == 0).sum())
    assert 0 < zeros <= 3 * 6400


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
