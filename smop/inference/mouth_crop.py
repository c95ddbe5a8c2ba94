"""The mouth-crop settings a model was trained with, as data preparation records them.

Data preparation writes ``<data_dir>/mouth_crop.yaml``::

    reference_face: /abs/path/20words_mean_face.npy   # (68, 2) reference landmarks
    reference_face_sha256: dbf68b...
    roi_size: 96          # side of the square crop, in reference-face pixels
    roi_resize: null      # or the side the crops are resized to
    smooth_window: 12     # frames of landmark smoothing

A pack holds the same file with ``reference_face`` relative to the pack (its copy of the face).
Decoding a video file crops its mouth with exactly these settings, through the code of data
preparation (``smop.data.mouth_roi.crop_mouths``).
"""
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from smop.data.mouth_roi import crop_mouths, load_crop_settings, load_reference_face, write_crop_settings


@dataclass(frozen=True)
class MouthCropSettings:
    reference_face: Path
    reference_face_sha256: str
    roi_size: int
    roi_resize: Optional[int]
    smooth_window: int

    @classmethod
    def read(cls, path: Path) -> "MouthCropSettings":
        """Settings from a ``mouth_crop.yaml`` (smop.data.mouth_roi's format); the face file must exist
        and match its recorded checksum (else the crops would differ from training's)."""
        values = load_crop_settings(path)
        settings = cls(Path(values["reference_face"]), values["reference_face_sha256"], values["roi_size"],
                       values["roi_resize"], values["smooth_window"])
        _ = settings.reference  # read and checked now, not at the first video
        return settings

    def write(self, path: Path, reference_face: str) -> None:
        """Write the settings to ``path``, naming the face file as ``reference_face`` (relative to it)."""
        write_crop_settings(path, self.reference_face, self.roi_size, self.roi_resize, self.smooth_window,
                            recorded_face=reference_face)

    @functools.cached_property
    def reference(self) -> np.ndarray:
        """The (68, 2) reference face, read and checked against its checksum once."""
        return load_reference_face(self.reference_face, self.reference_face_sha256)

    def crop(self, frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(T, H, W) uint8 frames + (T, 68, 2) landmarks -> (T, S, S) uint8 mouth crops, as in data preparation."""
        return crop_mouths(frames, landmarks, size=self.roi_size, reference=self.reference,
                           smooth_window=self.smooth_window, out_size=self.roi_resize)

    def describe(self) -> str:
        size = f"{self.roi_size}x{self.roi_size}"
        if self.roi_resize:
            size += f" resized to {self.roi_resize}x{self.roi_resize}"
        return f"{size}, landmarks smoothed over {self.smooth_window} frames, reference face sha256 {self.reference_face_sha256[:12]}"
