import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor, WhisperModel

from smop.encoders.whisper_encoder import WhisperAudioEncoder


def test_log_mel_matches_the_feature_extractor(pretrained):
    enc = WhisperAudioEncoder(pretrained["whisper"])
    fe = WhisperFeatureExtractor.from_pretrained(pretrained["whisper"])
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    ref = fe(wave, sampling_rate=16000, return_tensors="np", padding="max_length").input_features[0]
    ours = enc.log_mel.one(torch.from_numpy(wave), pad_to=enc.window_samples).numpy()
    assert ours.shape == ref.shape == (80, 300)  # tiny model: 150 positions = 3 s window
    assert np.abs(ours - ref).max() < 1e-4


def test_full_window_encoder_matches_transformers(pretrained):
    enc = WhisperAudioEncoder(pretrained["whisper"])
    fe = WhisperFeatureExtractor.from_pretrained(pretrained["whisper"])
    hf = WhisperModel.from_pretrained(pretrained["whisper"]).get_encoder().eval()
    rng = np.random.default_rng(1)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 9000)]
    feats = fe(waves, sampling_rate=16000, return_tensors="pt", padding="max_length").input_features
    with torch.no_grad():
        ref = hf(feats).last_hidden_state
    speech = torch.zeros(2, 16000)
    speech[0], speech[1, :9000] = torch.from_numpy(waves[0]), torch.from_numpy(waves[1])
    with torch.no_grad():
        y, n = enc(speech, torch.tensor([16000, 9000]))
    # 50 Hz: ceil((samples // 160) / 2)
    assert n.tolist() == [50, 28] and y.shape == (2, 50, 32)
    assert torch.allclose(y[0], ref[0, :50], atol=1e-4)
    assert torch.allclose(y[1, :28], ref[1, :28], atol=1e-4)


def test_length_aware_is_batch_invariant(pretrained):
    enc = WhisperAudioEncoder(pretrained["whisper"], length_aware=True)
    torch.manual_seed(0)
    speech = torch.randn(2, 16000) * 0.1
    speech[1, 7000:] = 0
    with torch.no_grad():
        y, n = enc(speech, torch.tensor([16000, 7000]))
        alone, n1 = enc(speech[1:, :7000], torch.tensor([7000]))
    assert n.tolist() == [50, 22] and n1.tolist() == [22]
    assert torch.allclose(y[1, :22], alone[0, :22], atol=1e-5)


def test_too_long_is_a_clear_error(pretrained):
    enc = WhisperAudioEncoder(pretrained["whisper"])
    with pytest.raises(ValueError, match="at most 48000 samples"):
        enc(torch.zeros(1, 50000), torch.tensor([50000]))


def test_frozen_by_default_and_trainable_when_asked(pretrained):
    enc = WhisperAudioEncoder(pretrained["whisper"])
    enc.train()
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    enc = WhisperAudioEncoder(pretrained["whisper"], freeze=False)
    enc.train()
    assert enc.training and all(p.requires_grad for p in enc.encoder.layers.parameters())
