"""Additive noise at a given SNR (training augmentation and noisy test sets)."""

from typing import Optional

import numpy as np


def noise_segment(noise: np.ndarray, length: int, offset: int) -> np.ndarray:
    """``length`` samples of ``noise`` from ``offset``, wrapping around."""
    if noise.size == 0:
        raise ValueError("empty noise signal")
    idx = (offset + np.arange(length)) % noise.size
    return noise[idx]


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: Optional[float], offset: int) -> np.ndarray:
    """speech + g * noise[offset:], with g set so that 10 log10(P_speech / P_noise) = snr_db.

    ``snr_db`` None means clean (the speech is returned unchanged). Silent speech stays silent.
    """
    if snr_db is None:
        return speech
    seg = noise_segment(noise, speech.shape[0], offset).astype(np.float64)
    p_speech = float(np.mean(speech.astype(np.float64) ** 2))
    p_noise = float(np.mean(seg**2))
    if p_speech == 0.0 or p_noise == 0.0:
        return speech
    gain = np.sqrt(p_speech / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (speech.astype(np.float64) + gain * seg).astype(speech.dtype)
