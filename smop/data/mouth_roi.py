"""Mouth regions of interest, cut as the official LRS3 preparation cuts them (auto_avsr's
``VideoProcess``, whose crops the released AV-HuBERT and Llama-AVSR models were trained on).

Every frame is similarity-warped onto a reference face in a 256x256 canvas (black outside the
frame) with landmarks smoothed over time, and a square is cut around the warped mouth. Grey
uint8, one crop per video frame. The settings a data set was cropped with
(:class:`MouthCropSettings`) are stored beside it, so that other video can be cropped the same
way later::

    reference_face: /abs/path/20words_mean_face.npy   # (68, 2) reference landmarks
    reference_face_sha256: dbf68b...
    roi_size: 96          # side of the square crop, in reference-face pixels
    roi_resize: null      # or the side the crops are resized to
    smooth_window: 12     # frames of landmark smoothing

A packed model holds the same file with ``reference_face`` relative to the pack (its copy).
"""

import dataclasses
import functools
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np
import yaml

from smop.data.errors import DataError
from smop.data.landmarks import LandmarkError, interpolate_missing, smooth
from smop.data.npy import load_npy
from smop.utils.io import atomic_write, sha256_of

CANVAS = 256
# Points that move little with speech: nose bridge and tip, eye corners, mouth corners (auto_avsr's choice).
STABLE_POINTS = (28, 33, 36, 39, 42, 45, 48, 54)
MOUTH = slice(48, 68)
# A crop centre further than half the crop plus this from the canvas centre means a failed alignment
# (auto_avsr's threshold, in canvas pixels).
CENTRE_SLACK = 5
# auto_avsr's crop: a 96-pixel square around the mouth, landmarks smoothed over 12 frames.
ROI_SIZE = 96
SMOOTH_WINDOW = 12
CROP_SETTINGS = "mouth_crop.yaml"  # beside a data set's tables, and in a packed model


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
        raise ReferenceFaceError(
            f"{path} is not the reference face the crops were made with (sha256 differs from {sha256})"
        )
    if not data.startswith(b"\x93NUMPY"):
        raise ReferenceFaceError(f"{path}: not a .npy file")
    face = load_npy(io.BytesIO(data), str(path), ReferenceFaceError)
    if face.shape != (68, 2) or not np.issubdtype(face.dtype, np.number) or not np.isfinite(face).all():
        raise ReferenceFaceError(
            f"{path}: reference face of shape {face.shape} ({face.dtype}), expected (68, 2) finite "
            f"landmarks such as 20words_mean_face.npy"
        )
    stable = face[list(STABLE_POINTS)]
    if stable.min() < 0 or stable.max() >= CANVAS or np.ptp(stable, axis=0).min() < 8:
        raise ReferenceFaceError(
            f"{path}: the reference face's landmarks do not lie in the {CANVAS}x{CANVAS} canvas "
            f"(x {face[:, 0].min():.1f}..{face[:, 0].max():.1f}, y {face[:, 1].min():.1f}..{face[:, 1].max():.1f})"
        )
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
    size: int = ROI_SIZE,
    *,
    reference: np.ndarray,
    smooth_window: int = SMOOTH_WINDOW,
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
        raise AlignmentError(
            f"expected (T, H, W) frames and (T, 68, 2) landmarks, got {frames.shape} and {landmarks.shape}"
        )
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
        warped = cv2.warpAffine(
            frames[t], m, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        centre = (marks[t, MOUTH] @ m[:, :2].T + m[:, 2]).mean(0)
        off = np.abs(centre - CANVAS / 2)
        if off.max() > half + CENTRE_SLACK:
            raise AlignmentError(
                f"frame {t}: the mouth lands {off.max():.0f} px from the canvas centre (at most {half + CENTRE_SLACK})"
            )
        # Rounded half to even, as numpy rounds in the official code; kept inside the canvas.
        x0, y0 = (int(min(max(v, 0), CANVAS - size)) for v in np.rint(centre - half))
        crop = warped[y0 : y0 + size, x0 : x0 + size]
        out[t] = crop if final == size else cv2.resize(crop, (final, final), interpolation=cv2.INTER_AREA)
    return out


@dataclass(frozen=True)
class MouthCropSettings:
    """How a data set's mouths were cropped: the one form of these settings (data preparation
    writes it, packs carry it, transcription crops with it)."""

    reference_face: Path
    reference_face_sha256: str
    roi_size: int = ROI_SIZE
    roi_resize: Optional[int] = None
    smooth_window: int = SMOOTH_WINDOW

    @classmethod
    def of_face(
        cls,
        reference_face: Union[str, Path],
        roi_size: int = ROI_SIZE,
        roi_resize: Optional[int] = None,
        smooth_window: int = SMOOTH_WINDOW,
    ) -> "MouthCropSettings":
        """Settings for cropping with the face file ``reference_face``, which is read and checked
        now (ReferenceFaceError) and its digest taken."""
        face = Path(reference_face).resolve()
        reference = load_reference_face(face)
        settings = cls(face, sha256_of(face), roi_size, roi_resize, smooth_window)
        settings.__dict__["reference"] = reference  # the cached property, without a second read
        return settings

    @classmethod
    def read(cls, path: Union[str, Path]) -> "MouthCropSettings":
        """The settings of a ``mouth_crop.yaml``; ``reference_face`` there is absolute or relative to
        the file's folder. The face must exist and match its digest (else the crops would differ
        from training's). Raises DataError naming the file and key."""
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise DataError(f"cannot read mouth crop settings {path}: {e}") from None
        if not isinstance(values, dict):
            raise DataError(f"{path}: mouth crop settings must be a mapping")
        keys = [f.name for f in dataclasses.fields(cls)]
        missing = [k for k in keys if k not in values]
        if missing:
            raise DataError(f"{path}: mouth crop settings lack {', '.join(missing)} (written by smop.bin.prepare_lrs3)")
        for key in ("roi_size", "smooth_window") + (("roi_resize",) if values["roi_resize"] is not None else ()):
            if not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < 1:
                raise DataError(f"{path}: {key} must be a positive integer, got {values[key]!r}")
        for key in ("reference_face", "reference_face_sha256"):
            if not isinstance(values[key], str):
                raise DataError(f"{path}: {key} must be a string, got {values[key]!r}")
        face = Path(path).parent / values["reference_face"]  # unchanged when absolute
        settings = cls(face, *(values[k] for k in keys[1:]))
        _ = settings.reference  # read and checked now, not at the first video
        return settings

    def write(self, path: Union[str, Path], recorded_face: Optional[str] = None) -> None:
        """Store the settings in ``path``; ``recorded_face``: how the file names the face, e.g. a
        path relative to its folder (a packed model holds its own copy); by default its absolute path."""
        values = dataclasses.asdict(self)
        values["reference_face"] = recorded_face or str(self.reference_face)
        with atomic_write(path) as f:
            f.write("# Mouth crops of this data set (smop.data.mouth_roi); crop other video with the same settings.\n")
            yaml.safe_dump(values, f, sort_keys=False)

    @functools.cached_property
    def reference(self) -> np.ndarray:
        """The (68, 2) reference face, read and checked against its digest once."""
        return load_reference_face(self.reference_face, self.reference_face_sha256)

    def crop(self, frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(T, H, W) uint8 frames + (T, 68, 2) landmarks -> (T, S, S) uint8 mouth crops (:func:`crop_mouths`)."""
        return crop_mouths(
            frames,
            landmarks,
            size=self.roi_size,
            reference=self.reference,
            smooth_window=self.smooth_window,
            out_size=self.roi_resize,
        )

    @property
    def side(self) -> int:
        """The side of the crops, in pixels."""
        return self.roi_resize or self.roi_size

    def describe(self) -> str:
        size = f"{self.roi_size}x{self.roi_size}"
        if self.roi_resize:
            size += f" resized to {self.roi_resize}x{self.roi_resize}"
        return (
            f"{size}, landmarks smoothed over {self.smooth_window} frames, reference face sha256 "
            f"{self.reference_face_sha256[:12]}"
        )


__all__ = [
    "AlignmentError",
    "LandmarkError",
    "MouthCropSettings",
    "ReferenceFaceError",
    "crop_mouths",
    "load_reference_face",
    "similarity_transform",
]
