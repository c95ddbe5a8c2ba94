"""The mini corpus's reference face: 68 landmarks (iBUG order) of a drawn frontal face.

The mini corpus draws its talking faces from these landmarks (smop.mini.face) and writes them,
in the 256x256 canvas of the mouth crops, beside the corpus as ``mean_face.npy``: the mini
recipe crops mouths with it, as LRS3 is cropped with the official ``20words_mean_face.npy``.
"""

from pathlib import Path

import numpy as np

from smop.utils.io import atomic_write

# Normalised coordinates (x right, y down), nose bridge near the origin.
_JAW = [(-0.95 * np.cos(np.pi * i / 16), -0.25 + 1.2 * np.sin(np.pi * i / 16) * 0.95) for i in range(17)]
_BROWS = [
    (-0.75, -0.52),
    (-0.6, -0.6),
    (-0.45, -0.62),
    (-0.3, -0.6),
    (-0.15, -0.55),
    (0.15, -0.55),
    (0.3, -0.6),
    (0.45, -0.62),
    (0.6, -0.6),
    (0.75, -0.52),
]
_NOSE = [
    (0.0, -0.4),
    (0.0, -0.25),
    (0.0, -0.1),
    (0.0, 0.05),
    (-0.18, 0.15),
    (-0.09, 0.18),
    (0.0, 0.2),
    (0.09, 0.18),
    (0.18, 0.15),
]
_EYES = [
    (-0.57, -0.3),
    (-0.47, -0.36),
    (-0.35, -0.36),
    (-0.27, -0.3),
    (-0.35, -0.25),
    (-0.47, -0.25),
    (0.27, -0.3),
    (0.35, -0.36),
    (0.47, -0.36),
    (0.57, -0.3),
    (0.47, -0.25),
    (0.35, -0.25),
]
_MOUTH_OUTER = [
    (-0.3, 0.5),
    (-0.2, 0.43),
    (-0.08, 0.4),
    (0.0, 0.42),
    (0.08, 0.4),
    (0.2, 0.43),
    (0.3, 0.5),
    (0.2, 0.58),
    (0.08, 0.62),
    (0.0, 0.63),
    (-0.08, 0.62),
    (-0.2, 0.58),
]
_MOUTH_INNER = [
    (-0.24, 0.5),
    (-0.08, 0.47),
    (0.0, 0.47),
    (0.08, 0.47),
    (0.24, 0.5),
    (0.08, 0.53),
    (0.0, 0.53),
    (-0.08, 0.53),
]

NORMALISED = np.array(_JAW + _BROWS + _NOSE + _EYES + _MOUTH_OUTER + _MOUTH_INNER, dtype=np.float64)
assert NORMALISED.shape == (68, 2)

# Placement in the crops' 256x256 canvas: pixels per normalised unit and the origin.
SCALE = 70.0
CENTRE = (128.0, 100.0)

MEAN_FACE = np.stack([CENTRE[0] + SCALE * NORMALISED[:, 0], CENTRE[1] + SCALE * NORMALISED[:, 1]], axis=1).astype(
    np.float32
)


def write_mean_face(path: Path) -> None:
    with atomic_write(path, "wb") as f:
        np.save(f, MEAN_FACE)
