"""Facial landmark tracks: (T, 68, 2) float arrays with NaN rows where the detector found no face.

Stored per video as ``<id>.npy``. ``python -m smop.bin.convert_landmarks`` turns the precomputed
LRS3 landmark pickles of auto_avsr (a list of (68, 2) arrays or None per frame) into this format.
"""

from typing import Tuple

import numpy as np

from smop.data.errors import DataError
from smop.data.npy import load_npy


class LandmarkError(DataError):
    pass


def load_landmarks(path: str) -> np.ndarray:
    marks = load_npy(path, str(path), LandmarkError)
    if marks.ndim != 3 or marks.shape[1:] != (68, 2):
        raise LandmarkError(f"{path}: landmarks of shape {marks.shape}, expected (T, 68, 2)")
    return marks.astype(np.float64)


# A landmark track may differ from the decoded video by a few frames (decoders count frames
# differently at the ends); more means the track belongs to other video.
MAX_FRAME_MISMATCH = 2


def match_frames(frames: np.ndarray, marks: np.ndarray, source) -> Tuple[np.ndarray, np.ndarray]:
    """Video frames and their landmark track cut to a common length; LandmarkError naming ``source``
    (the landmarks file or the video) when they differ by more than MAX_FRAME_MISMATCH frames."""
    if abs(marks.shape[0] - frames.shape[0]) > MAX_FRAME_MISMATCH:
        raise LandmarkError(f"{source}: {marks.shape[0]} landmark frames for {frames.shape[0]} video frames")
    n = min(marks.shape[0], frames.shape[0])
    return frames[:n], marks[:n]


def interpolate_missing(marks: np.ndarray) -> np.ndarray:
    """Fill frames without landmarks linearly between detected ones; repeat the edge frames.

    Raises LandmarkError when no frame has landmarks.
    """
    valid = ~np.isnan(marks).any(axis=(1, 2))
    if not valid.any():
        raise LandmarkError("no frame has landmarks")
    if valid.all():
        return marks
    t = np.arange(marks.shape[0])
    flat = marks.reshape(marks.shape[0], -1)
    filled = np.stack([np.interp(t, t[valid], flat[valid, j]) for j in range(flat.shape[1])], axis=1)
    return filled.reshape(marks.shape)


def smooth(marks: np.ndarray, window: int = 12) -> np.ndarray:
    """Landmarks averaged over time against detector jitter, as the official LRS3 preparation does.

    Frame t takes the mean of frames t-h..t+h with h = min(window // 2, t, T - 1 - t): the window
    shrinks on both sides near the clip ends, so it never lags behind a moving head there. The mean
    shape is then moved onto frame t's own landmark centroid, so that smoothing steadies the face's
    shape and pose but not its position.
    """
    t = np.arange(marks.shape[0])
    half = np.minimum(np.minimum(window // 2, t), t[::-1])
    csum = np.concatenate([np.zeros((1,) + marks.shape[1:]), np.cumsum(marks, axis=0)])
    mean = (csum[t + half + 1] - csum[t - half]) / (2 * half + 1)[:, None, None]
    return mean + (marks.mean(axis=1) - mean.mean(axis=1))[:, None, :]
