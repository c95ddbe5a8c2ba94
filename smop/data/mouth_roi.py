"""Mouth regions of interest, cut as the official LRS3 preparation cuts them (auto_avsr's
``VideoProcess``, whose crops the released AV-HuBERT and Llama-AVSR models were trained on).

Every frame is similarity-warped onto a reference face in a 256x256 canvas (black outside the
frame) with landmarks smoothed over time, and a square is cut around the warped mouth. Grey
uint8, one crop per video frame. The settings a data set was cropped with are stored beside it
(``mouth_crop.yaml``), so that other video can be cropped the same way later.
"""
import hashlib
import io
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np
import yaml

from smop.data.errors import DataError
from smop.data.landmarks import LandmarkError, interpolate_missing, smooth
from smop.utils.io import atomic_write, sha256_of

CANVAS = 256
# Points that move little with speech: nose bridge and tip, eye corners, mouth corners (auto_avsr's choice).
STABLE_POINTS = (28, 33, 36, 39, 42, 45, 48, 54)
MOUTH = slice(48, 68)
# A crop centre further than half the crop plus this from the canvas centre means a failed alignment
# (auto_avsr's threshold, in canvas pixels).
CENTRE_SLACK = 5
CROP_SETTINGS = "mouth_crop.yaml"
_SETTING_KEYS = ("reference_face", "reference_face_sha256", "roi_size", "roi_resize", "smooth_window")


class AlignmentError(DataError):
    pass


class ReferenceFaceError(DataError):
    pass


def load_reference_face(path: Union[str, Path], sha256: Optional[str] = None) -> np.ndarray:
    """The (68, 2) reference landmarks (pixels of the 256x256 canvas) from a .npy file.

    ``sha256``: the digest the file must have (e.g. from a data set's ``mouth_crop.yaml``).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ReferenceFaceError(f"cannot read the reference face {path}: {e.strerror or e}") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ReferenceFaceError(f"{path} is not the reference face the crops were made with (sha256 differs from {sha256})")
    if not data.startswith(b"\x93NUMPY"):
        raise ReferenceFaceError(f"{path}: not a .npy file")
    try:
        face = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        raise ReferenceFaceError(f"{path}: not a numeric .npy array ({e})") from None
    if face.shape != (68, 2) or not np.issubdtype(face.dtype, np.number) or not np.isfinite(face).all():
        raise ReferenceFaceError(f"{path}: reference face of shape {face.shape} ({face.dtype}), expected (68, 2) finite "
                                 f"landmarks such as 20words_mean_face.npy")
    stable = face[list(STABLE_POINTS)]
    if stable.min() < 0 or stable.max() >= CANVAS or np.ptp(stable, axis=0).min() < 8:
        raise ReferenceFaceError(f"{path}: the reference face's landmarks do not lie in the {CANVAS}x{CANVAS} canvas "
                                 f"(x {face[:, 0].min():.1f}..{face[:, 0].max():.1f}, y {face[:, 1].min():.1f}..{face[:, 1].max():.1f})")
    return face.astype(np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) rotation + uniform scale + translation taking ``src`` points onto ``dst`` (least median of squares)."""
    m, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    if m is None or not np.isfinite(m).all():
        raise AlignmentError("no similarity transform fits the landmarks")
    return m


def crop_mouths(
    frames: np.ndarray,
    landmarks: np.ndarray,
    size: int = 96,
    *,
    reference: np.ndarray,
    smooth_window: int = 12,
    out_size: Optional[int] = None,
) -> np.ndarray:
    """(T, H, W) uint8 frames + (T, 68, 2) landmarks (NaN = missing) -> (T, size, size) uint8.

    ``reference``: (68, 2) landmarks in the 256x256 canvas (see :func:`load_reference_face`).
    ``smooth_window``: landmark smoothing, frames (see :func:`smop.data.landmarks.smooth`).
    ``out_size`` resizes the crops (small models on CPUs); None keeps ``size``.

    Missing landmarks are interpolated; all missing, a degenerate transform, or a mouth that lands
    too far from the canvas centre raise (LandmarkError / AlignmentError) so that the caller can
    skip the file with a reason.
    """
    if frames.ndim != 3 or landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise AlignmentError(f"expected (T, H, W) frames and (T, 68, 2) landmarks, got {frames.shape} and {landmarks.shape}")
    if frames.shape[0] != landmarks.shape[0]:
        raise AlignmentError(f"{frames.shape[0]} frames but {landmarks.shape[0]} landmark frames")
    if np.shape(reference) != (68, 2):
        raise AlignmentError(f"reference face of shape {np.shape(reference)}, expected (68, 2)")
    marks = smooth(interpolate_missing(landmarks), smooth_window)
    stable = list(STABLE_POINTS)
    target = np.asarray(reference, np.float64)[stable]
    final = size if out_size is None else out_size
    out = np.empty((frames.shape[0], final, final), dtype=np.uint8)
    half = size // 2
    for t in range(frames.shape[0]):
        m = similarity_transform(marks[t, stable], target)
        scale = np.sqrt(abs(np.linalg.det(m[:, :2])))
        if not 0.05 < scale < 20:
            raise AlignmentError(f"frame {t}: implausible face scale {scale:.3f}")
        # Black outside the frame, as the official warp (edge replication would invent a chin).
        warped = cv2.warpAffine(frames[t], m, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        centre = (marks[t, MOUTH] @ m[:, :2].T + m[:, 2]).mean(0)
        off = np.abs(centre - CANVAS / 2)
        if off.max() > half + CENTRE_SLACK:
            raise AlignmentError(f"frame {t}: the mouth lands {off.max():.0f} px from the canvas centre "
                                 f"(at most {half + CENTRE_SLACK})")
        # Rounded half to even, as numpy rounds in the official code; kept inside the canvas.
        x0, y0 = (int(min(max(v, 0), CANVAS - size)) for v in np.rint(centre - half))
        crop = warped[y0 : y0 + size, x0 : x0 + size]
        out[t] = crop if final == size else cv2.resize(crop, (final, final), interpolation=cv2.INTER_AREA)
    return out


def write_crop_settings(path: Union[str, Path], reference_face: Union[str, Path], roi_size: int,
                        roi_resize: Optional[int], smooth_window: int, recorded_face: Optional[str] = None) -> None:
    """Store how a data set's crops were made (read back by :func:`load_crop_settings`).

    ``recorded_face``: how the file names the face, e.g. a path relative to its folder (a packed
    model holds its own copy); by default the face's absolute path."""
    face = Path(reference_face).resolve()
    settings = {
        "reference_face": recorded_face or str(face),
        "reference_face_sha256": sha256_of(face),
        "roi_size": int(roi_size),
        "roi_resize": None if roi_resize is None else int(roi_resize),
        "smooth_window": int(smooth_window),
    }
    with atomic_write(path) as f:
        f.write("# Mouth crops of this data set (smop.data.mouth_roi); crop other video with the same settings.\n")
        yaml.safe_dump(settings, f, sort_keys=False)


def load_crop_settings(path: Union[str, Path]) -> dict:
    """The settings in a ``mouth_crop.yaml``: reference_face (an absolute path; a relative one is
    relative to the file's folder), reference_face_sha256, roi_size, roi_resize (None or int),
    smooth_window. Raises DataError naming the file and key."""
    try:
        settings = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"cannot read mouth crop settings {path}: {e}") from None
    if not isinstance(settings, dict):
        raise DataError(f"{path}: mouth crop settings must be a mapping")
    missing = [k for k in _SETTING_KEYS if k not in settings]
    if missing:
        raise DataError(f"{path}: mouth crop settings lack {', '.join(missing)} (written by smop.bin.prepare_lrs3)")
    for key in ("roi_size", "smooth_window") + (("roi_resize",) if settings["roi_resize"] is not None else ()):
        if not isinstance(settings[key], int) or isinstance(settings[key], bool) or settings[key] < 1:
            raise DataError(f"{path}: {key} must be a positive integer, got {settings[key]!r}")
    for key in ("reference_face", "reference_face_sha256"):
        if not isinstance(settings[key], str):
            raise DataError(f"{path}: {key} must be a string, got {settings[key]!r}")
    settings["reference_face"] = str(Path(path).parent / settings["reference_face"])  # unchanged when absolute
    return settings


__all__ = ["AlignmentError", "LandmarkError", "ReferenceFaceError", "crop_mouths", "load_crop_settings",
           "load_reference_face", "similarity_transform", "write_crop_settings"]
