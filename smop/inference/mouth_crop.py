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
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import yaml

from smop.data.errors import DataError

FILE_NAME = "mouth_crop.yaml"
KEYS = ("reference_face", "reference_face_sha256", "roi_size", "roi_resize", "smooth_window")


class MouthCropError(DataError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class MouthCropSettings:
    reference_face: Path
    reference_face_sha256: str
    roi_size: int
    roi_resize: Optional[int]
    smooth_window: int

    @classmethod
    def read(cls, path: Path) -> "MouthCropSettings":
        """Settings from a ``mouth_crop.yaml``; a relative ``reference_face`` is relative to the
        file's folder. The face file must exist and match its recorded checksum."""
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise MouthCropError(f"{path}: cannot read the mouth-crop settings: {e}") from e
        if not isinstance(values, dict) or set(KEYS) - set(values):
            have = sorted(values) if isinstance(values, dict) else values
            raise MouthCropError(f"{path}: mouth-crop settings need the keys {list(KEYS)}, found {have}")
        face = Path(values["reference_face"])
        face = face if face.is_absolute() else path.parent / face
        if not face.is_file():
            raise MouthCropError(f"{path}: reference face {face} not found")
        if sha256_of(face) != values["reference_face_sha256"]:
            raise MouthCropError(f"{path}: reference face {face} does not match its recorded sha256 "
                                 f"{values['reference_face_sha256']} (the crops would differ from training)")
        resize = values["roi_resize"]
        return cls(face, str(values["reference_face_sha256"]), int(values["roi_size"]),
                   None if resize is None else int(resize), int(values["smooth_window"]))

    def write(self, path: Path, reference_face: str) -> None:
        """Write the settings to ``path``, naming the face file as ``reference_face``."""
        from smop.utils.io import atomic_write

        values = {"reference_face": reference_face, "reference_face_sha256": self.reference_face_sha256,
                  "roi_size": self.roi_size, "roi_resize": self.roi_resize, "smooth_window": self.smooth_window}
        with atomic_write(path) as f:
            yaml.safe_dump(values, f, sort_keys=False)

    def face(self) -> np.ndarray:
        face = np.load(self.reference_face, allow_pickle=False)
        if face.shape != (68, 2):
            raise MouthCropError(f"{self.reference_face}: reference face of shape {face.shape}, expected (68, 2)")
        return face.astype(np.float32)

    def crop(self, frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(T, H, W) uint8 frames + (T, 68, 2) landmarks -> (T, S, S) uint8 mouth crops, as in data preparation."""
        from smop.data.mouth_roi import crop_mouths

        return crop_mouths(frames, landmarks, size=self.roi_size, reference=self.face(),
                           smooth_window=self.smooth_window, out_size=self.roi_resize)

    def describe(self) -> str:
        size = f"{self.roi_size}x{self.roi_size}"
        if self.roi_resize:
            size += f" resized to {self.roi_resize}x{self.roi_resize}"
        return f"{size}, landmarks smoothed over {self.smooth_window} frames, reference face sha256 {self.reference_face_sha256[:12]}"
