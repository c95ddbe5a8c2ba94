"""Short video clips of a real face (scikit-image's astronaut photo) under known similarity transforms.

The photo is placed in a 224x224 frame (LRS3's size) with its face about 100 px wide, then each
frame moves it by a rotation + uniform scale + shift about the frame centre; a frame given None
shows the photo shifted sideways onto its space-shuttle model, no face in view (its suit, with
badges, made HOG fire once after H.264 coding). Where a point of the base frame lands in frame t
is ``moved(point, transforms[t])``.
"""

import subprocess
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

SIZE = 224
FACE_CENTRE = (225.0, 132.0)  # in the 512x512 photo (dlib's 68 points span x 179-272, y 87-178)
BASE_SCALE = 1.1
Transform = Optional[Tuple[float, float, float, float]]  # (degrees, scale, dx, dy), None: no face


def astronaut_rgb() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def _matrix(angle: float, scale: float, dx: float, dy: float) -> np.ndarray:
    """3x3 similarity about the frame centre."""
    a = np.deg2rad(angle)
    c = SIZE / 2
    rot = np.array([[scale * np.cos(a), -scale * np.sin(a)], [scale * np.sin(a), scale * np.cos(a)]])
    m = np.eye(3)
    m[:2, :2] = rot
    m[:2, 2] = np.array([c + dx, c + dy]) - rot @ np.array([c, c])
    return m


def _base() -> np.ndarray:
    """3x3 map from the photo to the base frame: face centre a little above the frame centre."""
    m = np.eye(3)
    m[:2, :2] *= BASE_SCALE
    m[:2, 2] = np.array([SIZE / 2, SIZE / 2 - 8]) - BASE_SCALE * np.array(FACE_CENTRE)
    return m


def moved(points: np.ndarray, transform: Transform) -> np.ndarray:
    """Where base-frame ``points`` (N, 2) are in a frame rendered with ``transform``."""
    m = _matrix(*transform)
    return points @ m[:2, :2].T + m[:2, 2]


def render(transforms: Sequence[Transform], photo: Optional[np.ndarray] = None) -> np.ndarray:
    """(T, 224, 224, 3) uint8 RGB frames."""
    import cv2

    photo = astronaut_rgb() if photo is None else photo
    frames = []
    for tr in transforms:
        m = _matrix(*(tr if tr is not None else (0.0, 1.0, -200.0, 0.0))) @ _base()
        frames.append(
            cv2.warpAffine(photo, m[:2], (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        )
    return np.stack(frames)


def smooth_path(n: int, faceless: Sequence[int] = (), cycles: float = 1.0) -> List[Transform]:
    """A head moving smoothly: +-8 degrees, scale 0.88-1.12, shifts up to 12 px, through ``cycles``
    of its motion in ``n`` frames; None at ``faceless``."""
    t = cycles * np.arange(n) / max(n - 1, 1)
    path = [
        (
            8 * np.sin(2 * np.pi * x),
            1 + 0.12 * np.sin(np.pi * x + 1),
            12 * np.cos(2 * np.pi * x),
            8 * np.sin(4 * np.pi * x),
        )
        for x in t
    ]
    return [None if i in faceless else tuple(float(v) for v in p) for i, p in enumerate(path)]


def write_clip(path: Path, frames: np.ndarray, text: Optional[str] = None, fps: int = 25) -> Path:
    """H.264 mp4 (yuv420p, as LRS3) with a quiet 16 kHz tone as audio; ``text`` -> an LRS3 ``.txt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h, w, _ = frames.shape
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-r",
            str(fps),
            "-i",
            "pipe:0",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=300:sample_rate=16000:duration={t / fps}",
            "-c:v",
            "libx264",
            "-crf",
            "18",
            "-preset",
            "fast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        input=np.ascontiguousarray(frames).tobytes(),
        check=True,
    )
    if text is not None:
        path.with_suffix(".txt").write_text(f"Text:  {text}\nConf:  4\n")
    return path


def require_landmarks_extra():
    """Skip when dlib or scikit-image is missing, except in CI (CI=true), which installs them."""
    import os

    import pytest

    for module in ("dlib", "skimage"):
        if os.environ.get("CI") == "true":
            __import__(module)
        else:
            pytest.importorskip(module, reason="needs the landmarks extra: tools/install.sh --extra landmarks")
