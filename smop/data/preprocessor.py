"""Per-utterance preprocessing: noise and time masking (training), mouth crop, normalisation,
transcript tokenisation."""

import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import soundfile
import torch

from smop.data.errors import DataError
from smop.data.inputs import SAMPLE_RATE, VIDEO_FPS
from smop.data.noise import mix_at_snr


def adaptive_time_mask(x: np.ndarray, window: int, stride: int, rng: np.random.Generator) -> np.ndarray:
    """Zeroed time spans in ``x`` (T, ...), drawn as auto_avsr's ``AdaptiveTimeMask(window, stride)``.

    One span per started ``stride`` of T. Each span draws two numbers below ``window``: the first
    bounds its start (uniform below T minus it; no span when it is 0 or not below T), the second is
    its length, cut at the end of ``x``: spans are at most window - 1 long.
    """
    n = x.shape[0]
    count = int((n + stride - 0.1) // stride)
    if window <= 0 or count == 0:
        return x
    x = x.copy()
    for bound, length in rng.integers(0, window, size=(count, 2)):
        if bound == 0 or bound >= n:
            continue
        start = int(rng.integers(0, n - bound))
        x[start : start + length] = 0
    return x


class SmopPreprocessor:
    """Turns loaded ``speech`` (S,) float, ``video`` (T, H, W) uint8 and ``text`` str into model inputs.

    A plain callable (ESPnet's ``preprocess_fn`` contract): importing espnet2.train.preprocessor
    would pull in its g2p front ends, which try to download NLTK data.

    Args:
        train: augment (given by the task: true for the training set only).
        tokenize: transcript -> LLM token ids (given by the task).
        noise_file: 16 kHz noise (e.g. babble) mixed into training audio; None = no noise.
        noise_snrs: SNRs in dB drawn uniformly per utterance; null in the list = clean.
        audio_mask_max: time masking of training audio before the noise is added: one span per
            started second, shorter than this many seconds (0 = off; 0.4 = auto_avsr's 6400 samples).
        video_mask_max: the same for video, whose masked frames are black (0 before the pixel
            normalisation; 0.4 = auto_avsr's 10 frames).
        crop_size: square crop of the mouth ROI (random in training, centred otherwise).
        modality_dropout: in training, the share of audio-visual utterances in which one
            modality (audio or video, equally likely) is blanked, so that the model learns to
            use each alone and does not lean on one (0 = off, as in Llama-SMoP).
        video_mean, video_std: pixel normalisation after scaling to [0, 1] (AV-HuBERT's values).
    """

    def __init__(
        self,
        train: bool,
        tokenize: Optional[Callable[[str], List[int]]],
        noise_file: Optional[str] = None,
        noise_snrs: Sequence[Optional[float]] = (-5, 0, 5, 10, 15, 20, None),
        audio_mask_max: float = 0.4,
        video_mask_max: float = 0.4,
        crop_size: int = 88,
        video_mean: float = 0.421,
        video_std: float = 0.165,
        modality_dropout: float = 0.0,
    ):
        self.train = train
        self.tokenize = tokenize
        self.noise_file = noise_file
        self.noise_snrs = list(noise_snrs)
        self.audio_mask_max = audio_mask_max
        self.video_mask_max = video_mask_max
        self.crop_size = crop_size
        self.video_mean = video_mean
        self.video_std = video_std
        if not 0.0 <= modality_dropout <= 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1], got {modality_dropout}")
        self.modality_dropout = modality_dropout
        self._noise: Optional[np.ndarray] = None
        self._rng_key = None
        self._rng: Optional[np.random.Generator] = None

    def rng(self) -> np.random.Generator:
        # One generator per process, seeded from torch's per-worker seed (ESPnet seeds every epoch).
        key = (os.getpid(), torch.initial_seed())
        if self._rng_key != key:
            self._rng_key = key
            self._rng = np.random.default_rng(torch.initial_seed() % (2**63))
        return self._rng

    def noise(self) -> np.ndarray:
        if self._noise is None:
            wave, rate = soundfile.read(self.noise_file, dtype="float32", always_2d=True)
            if rate != SAMPLE_RATE or wave.shape[1] != 1:
                raise DataError(f"noise file {self.noise_file}: {rate} Hz x {wave.shape[1]} ch, expected 16 kHz mono")
            self._noise = wave[:, 0]
        return self._noise

    # ------------------------------------------------------------------------------------ parts
    def _time_mask(self, x: np.ndarray, rate: int, max_seconds: float) -> np.ndarray:
        return adaptive_time_mask(x, int(round(max_seconds * rate)), rate, self.rng())

    def speech(self, uid: str, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise DataError(f"utterance {uid}: speech must be mono (S,), got shape {wave.shape}")
        if self.train:  # before the noise, as auto_avsr: masked spans hold noise, not silence
            wave = self._time_mask(wave, SAMPLE_RATE, self.audio_mask_max)
        if self.train and self.noise_file is not None:
            rng = self.rng()
            snr = self.noise_snrs[int(rng.integers(len(self.noise_snrs)))]
            wave = mix_at_snr(wave, self.noise(), snr, int(rng.integers(self.noise().size)))
        return wave

    def video(self, uid: str, frames: np.ndarray) -> np.ndarray:
        t, h, w = frames.shape
        c = self.crop_size
        if h < c or w < c:
            raise DataError(f"utterance {uid}: mouth ROI {h}x{w} is smaller than crop_size {c}")
        if self.train:
            rng = self.rng()
            top, left = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        else:
            top, left = (h - c) // 2, (w - c) // 2
        x = frames[:, top : top + c, left : left + c].astype(np.float32) / 255.0
        if self.train:  # black frames, as auto_avsr (masked before the normalisation)
            x = self._time_mask(x, VIDEO_FPS, self.video_mask_max)
        return (x - self.video_mean) / self.video_std

    def text(self, uid: str, text: str) -> np.ndarray:
        text = text.strip()
        if not text:
            raise DataError(f"utterance {uid}: empty transcript")
        ids = self.tokenize(text)
        if not ids:
            raise DataError(f"utterance {uid}: transcript {text!r} gives no tokens")
        return np.asarray(ids, dtype=np.int64)

    def __call__(self, uid: str, data: Dict[str, object]) -> Dict[str, np.ndarray]:
        out = dict(data)
        if "speech" in out:
            out["speech"] = self.speech(uid, out["speech"])
        if "video" in out:
            out["video"] = self.video(uid, out["video"])
        if self.train and self.modality_dropout > 0 and "speech" in out and "video" in out:
            rng = self.rng()
            if rng.random() < self.modality_dropout:
                # silence, or the mean frame (0 after normalisation); lengths stay as they were
                blank = "speech" if rng.random() < 0.5 else "video"
                out[blank] = np.zeros_like(out[blank])
        if "text" in out:
            if self.tokenize is None:
                raise RuntimeError("SmopPreprocessor got text but no tokenizer")
            out["text"] = self.text(uid, out["text"])
        return out
