"""Audio and video of one recording made to agree in length: 640 samples of 16 kHz audio per
25 fps video frame, as data preparation stores them and the models read them."""

from pathlib import Path
from typing import Tuple

import numpy as np

from smop.data.inputs import SAMPLE_RATE, SAMPLES_PER_FRAME, VIDEO_FPS
from smop.data.media import MediaError

# Allowed audio/video length difference before a file counts as broken (seconds).
MAX_AV_MISMATCH = 0.2
# Audio and video of a long recording may drift apart (container timing, encoder padding): beyond
# the fixed tolerance, allowed up to this share of the duration.
AV_DRIFT = 0.01


def av_tolerance(seconds: float) -> float:
    """How far (s) a recording's audio may outlast or fall short of its video of ``seconds``."""
    return max(MAX_AV_MISMATCH, AV_DRIFT * seconds)


def fit_audio(
    wave: np.ndarray, frames: int, video: Path, tolerance: float = MAX_AV_MISMATCH
) -> Tuple[np.ndarray, float]:
    """Audio cut or zero-padded to exactly SAMPLES_PER_FRAME (640) samples per video frame; returns it
    and the change (s). A change over ``tolerance`` seconds is an error."""
    want = frames * SAMPLES_PER_FRAME
    diff = abs(wave.size - want) / SAMPLE_RATE
    if diff > tolerance:
        raise MediaError(f"{video}: audio lasts {wave.size / SAMPLE_RATE:.2f} s but video {frames / VIDEO_FPS:.2f} s")
    return np.pad(wave[:want], (0, max(0, want - wave.size))), diff
