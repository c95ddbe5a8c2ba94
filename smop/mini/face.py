"""A synthetic talking face drawn from per-frame mouth parameters (smop.mini.visemes makes them
from what is said, so that the picture still tells it when the audio is buried in noise).

The face is drawn from 68 landmarks (iBUG order) that are also returned, like a face tracker's output.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from smop.mini.mean_face import NORMALISED

MOUTH_OUTER = slice(48, 60)
MOUTH_INNER = slice(60, 68)


@dataclass
class FaceStyle:
    """What makes a face look like itself (the mini corpus draws one per utterance)."""

    scale: float  # pixels per normalised unit
    centre: tuple
    skin: int
    lips: int
    background: int
    lip_thickness: float

    @staticmethod
    def sample(rng: np.random.Generator, size: int) -> "FaceStyle":
        return FaceStyle(
            scale=float(rng.uniform(0.34, 0.4) * size),
            centre=(float(size / 2 + rng.uniform(-6, 6)), float(size * 0.42 + rng.uniform(-6, 6))),
            skin=int(rng.integers(120, 200)),
            lips=int(rng.integers(60, 110)),
            background=int(rng.integers(20, 90)),
            lip_thickness=float(rng.uniform(0.8, 1.3)),
        )


def mouth_points(params: np.ndarray, thickness: float) -> np.ndarray:
    """Normalised 68 landmarks with the mouth (48-67) deformed by one frame's parameters."""
    pts = NORMALISED.copy()
    opening, spread, upper, lower, skew, rnd = (float(v) for v in params[:6])
    open_amt = 0.02 + 0.18 * (opening + 1) / 2 + 0.04 * max(lower, 0)
    centre = np.array([0.0, 0.5])
    for i in range(48, 68):
        x, y = pts[i] - centre
        inner = i >= 60
        x *= 1 + 0.18 * spread - 0.22 * rnd * (0.6 if inner else 1.0)
        top = y < 0 or (inner and i in (61, 62, 63))
        if i in (48, 54, 60, 64):  # corners
            y += 0.03 * skew * (1 if i in (48, 60) else -1)
        elif top:
            y = y * thickness - open_amt / 2 - 0.025 * upper
        else:
            y = y * thickness + open_amt / 2 + 0.03 * max(lower, 0)
        if inner and i not in (60, 64):
            y *= 0.5 + 0.5 * (opening + 1) / 2
        pts[i] = centre + (x, y)
    return pts


def head_pose(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(frames, 4) smooth random walk of rotation (rad), scale, dx, dy."""
    steps = rng.normal(0, [0.004, 0.003, 0.25, 0.25], size=(frames, 4))
    pose = np.cumsum(steps, axis=0)
    pose -= pose.mean(0)
    return np.clip(pose, [-0.06, -0.05, -4, -4], [0.06, 0.05, 4, 4])


def render(params: np.ndarray, style: FaceStyle, rng: np.random.Generator, size: int = 160):
    """Frames (T, size, size) uint8 and landmarks (T, 68, 2) in pixels."""
    frames = params.shape[0]
    pose = head_pose(rng, frames)
    video = np.empty((frames, size, size), dtype=np.uint8)
    marks = np.empty((frames, 68, 2), dtype=np.float32)
    shift = 4
    k = float(1 << shift)
    for t in range(frames):
        pts = mouth_points(params[t], style.lip_thickness)
        rot, dscale, dx, dy = pose[t]
        c, s = np.cos(rot), np.sin(rot)
        scale = style.scale * (1 + dscale)
        px = np.stack(
            [
                scale * (c * pts[:, 0] - s * pts[:, 1]) + style.centre[0] + dx,
                scale * (s * pts[:, 0] + c * pts[:, 1]) + style.centre[1] + dy,
            ],
            axis=1,
        )
        marks[t] = px
        img = np.full((size, size), style.background, np.uint8)
        fp = lambda idx: (px[idx] * k).astype(np.int32)  # noqa: E731  subpixel polygon points
        head = np.concatenate([px[0:17], px[[26, 24, 19, 17]] + [0, -0.45 * scale]])
        cv2.fillPoly(img, [(head * k).astype(np.int32)], style.skin, cv2.LINE_AA, shift)
        for brow in (slice(17, 22), slice(22, 27)):
            cv2.polylines(img, [fp(brow)], False, max(style.skin - 80, 0), 2, cv2.LINE_AA, shift)
        for eye in (slice(36, 42), slice(42, 48)):
            cv2.fillPoly(img, [fp(eye)], 30, cv2.LINE_AA, shift)
        cv2.polylines(img, [fp(slice(27, 31))], False, max(style.skin - 40, 0), 1, cv2.LINE_AA, shift)
        cv2.polylines(img, [fp(slice(31, 36))], False, max(style.skin - 50, 0), 1, cv2.LINE_AA, shift)
        cv2.fillPoly(img, [fp(MOUTH_OUTER)], style.lips, cv2.LINE_AA, shift)
        inner = np.zeros_like(img)
        cv2.fillPoly(inner, [fp(MOUTH_INNER)], 255, cv2.LINE_AA, shift)
        teeth, tongue = (float(v) for v in params[t, 6:8])
        cavity = np.full_like(img, 15)
        ys = px[MOUTH_INNER, 1]
        top, bottom = ys.min(), ys.max()
        band = int(round(top + 0.35 * (bottom - top)))
        cavity[: max(band, 0)] = int(120 + 110 * max(teeth, 0))  # upper teeth
        cavity[int(round(bottom - 0.3 * (bottom - top))) :] = int(70 + 90 * max(tongue, 0))  # tongue
        alpha = inner.astype(np.float32) / 255
        img = (img * (1 - alpha) + cavity * alpha).astype(np.uint8)
        noise = rng.normal(0, 2.5, img.shape)
        video[t] = np.clip(img + noise, 0, 255).astype(np.uint8)
    return video, marks
