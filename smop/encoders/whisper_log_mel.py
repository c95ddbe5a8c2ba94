"""Whisper's log-mel front end in torch, on the model's device.

Same arithmetic as ``WhisperFeatureExtractor`` (power STFT, slaney mel bank, log10, clamp at the
utterance maximum minus 8, (x + 4) / 4), computed per utterance so that a batch never changes an
utterance's features.
"""

from typing import List, Optional

import numpy as np
import torch


class WhisperLogMel(torch.nn.Module):
    def __init__(self, mel_filters: np.ndarray, n_fft: int = 400, hop_length: int = 160):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        # (n_freq, n_mels) as stored by the feature extractor.
        self.register_buffer("mel_filters", torch.as_tensor(mel_filters, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def num_mel_bins(self) -> int:
        return self.mel_filters.shape[1]

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Mel frames covering ``num_samples`` (the extractor drops the last STFT frame)."""
        return torch.div(num_samples, self.hop_length, rounding_mode="floor")

    def one(self, wave: torch.Tensor, pad_to: Optional[int] = None) -> torch.Tensor:
        """(S,) waveform -> (n_mels, frames) log-mel. ``pad_to`` zero-pads the waveform first."""
        wave = wave.float()
        if pad_to is not None:
            if wave.numel() > pad_to:
                raise ValueError(f"utterance of {wave.numel()} samples exceeds the {pad_to}-sample window")
            wave = torch.nn.functional.pad(wave, (0, pad_to - wave.numel()))
        # In float32 whatever the model's dtype (a decoding in bfloat16 casts these buffers too),
        # as the feature extractor computes.
        stft = torch.stft(wave, self.n_fft, self.hop_length, window=self.window.float(), return_complex=True)
        power = (stft[..., :-1].abs() ** 2).contiguous()
        mel = self.mel_filters.float().T @ power
        log_spec = torch.clamp(mel, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor, pad_to: Optional[int] = None):
        """(B, S) padded waveforms -> list of (n_mels, frames_i) log-mels."""
        feats: List[torch.Tensor] = []
        for wave, n in zip(speech, speech_lengths.tolist()):
            feats.append(self.one(wave[:n], pad_to))
        return feats
