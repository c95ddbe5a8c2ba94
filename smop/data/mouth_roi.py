"""Mouth regions of interest: similarity-warp every frame onto a reference face, cut a square
around the mouth. Grayscale uint8, one crop per video frame."""
from typing import Optional

import cv2
import numpy as np

from smop.data.errors import DataError
from smop.data.landmarks import LandmarkError, interpolate_missing, smooth
from smop.data.mean_face import CANVAS, MEAN_FACE, MOUTH, STABLE_POINTS


class AlignmentError(DataError):
    pass


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) rotation + uniform scale + translation taking ``src`` points onto ``dst`` (least squares)."""
    m, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    if m is None or not np.isfinite(m).all():
        raise AlignmentError("no similarity transform fits the landmarks")
    return m


def crop_mouths(
    frames: np.ndarray,
    landmarks: np.ndarray,
    size: int = 96,
    reference: Optional[np.ndarray] = None,
    smooth_window: int = 12,
    max_offset: float = 0.25,
    out_size: Optional[int] = None,
) -> np.ndarray:
    """(T, H, W) uint8 frames + (T, 68, 2) landmarks (NaN = missing) -> (T, size, size) uint8.

    ``out_size`` resizes the crops (small models on CPUs); None keeps ``size``.

    Missing landmarks are interpolated; all missing, a degenerate transform, or a mouth that would
    fall outside the warped canvas raise (LandmarkError / AlignmentError) so the caller can skip
    the file with a reason.
    """
    if frames.shape[0] != landmarks.shape[0]:
        raise AlignmentError(f"{frames.shape[0]} frames but {landmarks.shape[0]} landmark frames")
    reference = MEAN_FACE if reference is None else reference
    marks = smooth(interpolate_missing(landmarks), smooth_window)
    stable = list(STABLE_POINTS)
    final = size if out_size is None else out_size
    out = np.empty((frames.shape[0], final, final), dtype=np.uint8)
    half = size // 2
    ref_centre = reference[MOUTH].mean(0)
    for t in range(frames.shape[0]):
        m = similarity_transform(marks[t, stable], reference[stable])
        scale = np.sqrt(abs(np.linalg.det(m[:, :2])))
        if not 0.05 < scale < 20:
            raise AlignmentError(f"frame {t}: implausible face scale {scale:.3f}")
        warped = cv2.warpAffine(frames[t], m, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mouth = (marks[t, MOUTH] @ m[:, :2].T + m[:, 2]).mean(0)
        if np.abs(mouth - ref_centre).max() > max_offset * CANVAS:
            raise AlignmentError(f"frame {t}: mouth lands {np.abs(mouth - ref_centre).max():.0f} px from the reference")
        cx, cy = int(round(mouth[0])), int(round(mouth[1]))
        x0 = min(max(cx - half, 0), CANVAS - size)
        y0 = min(max(cy - half, 0), CANVAS - size)
        crop = warped[y0 : y0 + size, x0 : x0 + size]
        out[t] = crop if final == size else cv2.resize(crop, (final, final), interpolation=cv2.INTER_AREA)
    return out


__all__ = ["AlignmentError", "LandmarkError", "crop_mouths", "similarity_transform"]
