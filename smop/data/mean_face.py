"""A canonical frontal face: 68 landmarks (iBUG order) in a 256x256 canvas.

Mouth crops are cut after a similarity warp of each frame onto this reference, so that every
speaker's mouth ends up at the same place and scale. LRS3 users who prefer the reference of
auto_avsr / AV-HuBERT can pass its ``20words_mean_face.npy`` (same 68-point order) instead.
"""
import numpy as np

# Normalised coordinates (x right, y down), nose bridge near the origin.
_JAW = [(-0.95 * np.cos(np.pi * i / 16), -0.25 + 1.2 * np.sin(np.pi * i / 16) * 0.95) for i in range(17)]
_BROWS = [(-0.75, -0.52), (-0.6, -0.6), (-0.45, -0.62), (-0.3, -0.6), (-0.15, -0.55),
          (0.15, -0.55), (0.3, -0.6), (0.45, -0.62), (0.6, -0.6), (0.75, -0.52)]
_NOSE = [(0.0, -0.4), (0.0, -0.25), (0.0, -0.1), (0.0, 0.05),
         (-0.18, 0.15), (-0.09, 0.18), (0.0, 0.2), (0.09, 0.18), (0.18, 0.15)]
_EYES = [(-0.57, -0.3), (-0.47, -0.36), (-0.35, -0.36), (-0.27, -0.3), (-0.35, -0.25), (-0.47, -0.25),
         (0.27, -0.3), (0.35, -0.36), (0.47, -0.36), (0.57, -0.3), (0.47, -0.25), (0.35, -0.25)]
_MOUTH_OUTER = [(-0.3, 0.5), (-0.2, 0.43), (-0.08, 0.4), (0.0, 0.42), (0.08, 0.4), (0.2, 0.43),
                (0.3, 0.5), (0.2, 0.58), (0.08, 0.62), (0.0, 0.63), (-0.08, 0.62), (-0.2, 0.58)]
_MOUTH_INNER = [(-0.24, 0.5), (-0.08, 0.47), (0.0, 0.47), (0.08, 0.47),
                (0.24, 0.5), (0.08, 0.53), (0.0, 0.53), (-0.08, 0.53)]

NORMALISED = np.array(_JAW + _BROWS + _NOSE + _EYES + _MOUTH_OUTER + _MOUTH_INNER, dtype=np.float64)
assert NORMALISED.shape == (68, 2)

CANVAS = 256
SCALE = 70.0
CENTRE = (128.0, 100.0)

MEAN_FACE = np.stack([CENTRE[0] + SCALE * NORMALISED[:, 0], CENTRE[1] + SCALE * NORMALISED[:, 1]], axis=1).astype(np.float32)

# Points that move little with speech: nose bridge and tip, eye corners, mouth corners (auto_avsr's choice).
STABLE_POINTS = (28, 33, 36, 39, 42, 45, 48, 54)
MOUTH = slice(48, 68)
