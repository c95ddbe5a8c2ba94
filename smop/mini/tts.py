"""Speech from espeak-ng at 16 kHz, with word timings from the pauses between words."""

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np
import soundfile

from smop.data.inputs import SAMPLE_RATE
from smop.mini.grid import speakable


@dataclass
class Voice:
    language: str  # en-us, en-gb, ...
    variant: str  # m1, f2, klatt, ...

    @property
    def name(self) -> str:
        return f"{self.language}+{self.variant}"

    @property
    def speaker(self) -> str:
        return f"{self.language.replace('-', '')}{self.variant}"


def synthesize(text: str, voice: Voice, speed: int, pitch: int, word_gap: int) -> np.ndarray:
    """float32 mono 16 kHz waveform (espeak-ng, resampled by sox, gain 0.9 against clipping)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                voice.name,
                "-s",
                str(speed),
                "-p",
                str(pitch),
                "-g",
                str(word_gap),
                "-w",
                str(raw),
                speakable(text),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sox", "-V1", "-R", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out), "vol", "0.9"],
            check=True,
            capture_output=True,
        )
        wave, rate = soundfile.read(out, dtype="float32")
    assert rate == SAMPLE_RATE
    return trim_silence(wave)


def trim_silence(wave: np.ndarray, keep: float = 0.12, threshold_db: float = -40.0) -> np.ndarray:
    """Drop leading/trailing silence, keeping ``keep`` seconds around the speech."""
    energy = _frame_db(wave)
    active = np.nonzero(energy > threshold_db)[0]
    if active.size == 0:
        return wave
    hop = SAMPLE_RATE // 100
    start = max(0, active[0] * hop - int(keep * SAMPLE_RATE))
    end = min(wave.size, (active[-1] + 1) * hop + int(keep * SAMPLE_RATE))
    return wave[start:end]


def _frame_db(wave: np.ndarray, hop: int = SAMPLE_RATE // 100) -> np.ndarray:
    n = wave.size // hop
    frames = wave[: n * hop].reshape(n, hop).astype(np.float64)
    power = (frames**2).mean(1) + 1e-12
    return 10 * np.log10(power / power.max())


def word_timings(wave: np.ndarray, words: List[str]) -> List[Tuple[str, float, float]]:
    """(word, start, end) in seconds: word boundaries at the n-1 longest internal pauses, or in
    proportion to word length when the pauses cannot be found."""
    db = _frame_db(wave)
    speech = db > -35.0
    idx = np.nonzero(speech)[0]
    if idx.size == 0:
        raise ValueError("silent utterance")
    first, last = idx[0], idx[-1] + 1
    gaps = []  # (length, start, end) of silent runs inside the speech
    t = first
    while t < last:
        if not speech[t]:
            s = t
            while t < last and not speech[t]:
                t += 1
            gaps.append((t - s, s, t))
        t += 1
    n = len(words)
    chosen = sorted(sorted(gaps, reverse=True)[: n - 1], key=lambda g: g[1])
    if len(chosen) == n - 1 and all(g[0] >= 3 for g in chosen):
        bounds = [first] + [x for g in chosen for x in (g[1], g[2])] + [last]
        spans = [(bounds[2 * i], bounds[2 * i + 1]) for i in range(n)]
    else:
        weights = np.array([len(w) + 1 for w in words], dtype=np.float64)
        edges = first + np.concatenate([[0], np.cumsum(weights)]) / weights.sum() * (last - first)
        spans = [(edges[i], edges[i + 1]) for i in range(n)]
    return [(w, round(s / 100, 2), round(e / 100, 2)) for w, (s, e) in zip(words, spans)]
