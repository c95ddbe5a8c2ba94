"""Facial landmarks from grey video frames with dlib, as in AV-HuBERT's LRS3 preparation: a face
detector (HOG, fast, or CNN) and the 68-point shape predictor, the largest face in each frame.

dlib is an optional dependency, the ``landmarks`` extra: ``tools/install.sh --extra landmarks``
(or ``pip install 'smop[landmarks]'``) installs ``dlib-bin`` and ``face-recognition-models``,
which ships the model files. dlib's 68-point model is for non-commercial research use (it was
trained on the iBUG 300-W faces).
"""
import importlib.util
from pathlib import Path
from typing import Optional, Union

import numpy as np

DETECTORS = ("hog", "cnn")
INSTALL_HINT = "install the landmarks extra: tools/install.sh --extra landmarks (or pip install 'smop[landmarks]')"
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
CNN_FILE = "mmod_human_face_detector.dat"


class DetectorUnavailable(ImportError):
    """dlib or its model files are not installed; the message says how to install them."""


def model_file(name: str) -> Path:
    """A model file shipped by face-recognition-models (found without importing the package,
    whose ``__init__`` needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable(f"face-recognition-models is not installed (it ships {name}): {INSTALL_HINT}")
    path = Path(spec.submodule_search_locations[0]) / "models" / name
    if not path.is_file():
        raise DetectorUnavailable(f"{path} is missing: reinstall face-recognition-models ({INSTALL_HINT})")
    return path


def _dlib():
    try:
        import dlib
    except ImportError as e:
        raise DetectorUnavailable(f"dlib is not installed: {INSTALL_HINT}") from e
    return dlib


class FaceLandmarkDetector:
    """(T, H, W) uint8 grey frames -> (T, 68, 2) float32 landmarks in pixels (x, y), NaN rows where
    no face is found; the largest face of each frame.

    ``detector``: "hog" (dlib's frontal face detector, default) or "cnn" (its MMOD CNN, about two
    orders of magnitude slower on a CPU). ``upsample``: how often the detector doubles the frame
    first (1, as AV-HuBERT: finds faces down to about 40 px wide). The model paths default to the
    files of face-recognition-models.
    """

    def __init__(self, detector: str = "hog", upsample: int = 1,
                 predictor_path: Optional[Union[str, Path]] = None, cnn_path: Optional[Union[str, Path]] = None):
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        dlib = _dlib()
        self.kind, self.upsample = detector, upsample
        self.predictor = dlib.shape_predictor(str(predictor_path or model_file(PREDICTOR_FILE)))
        if detector == "hog":
            self._detector = dlib.get_frontal_face_detector()
        else:
            self._detector = dlib.cnn_face_detection_model_v1(str(cnn_path or model_file(CNN_FILE)))

    def faces(self, frame: np.ndarray) -> list:
        """dlib rectangles of the faces found in one (H, W) uint8 frame."""
        found = self._detector(frame, self.upsample)
        return list(found) if self.kind == "hog" else [d.rect for d in found]

    def landmarks(self, frame: np.ndarray, face) -> np.ndarray:
        """(68, 2) float32 points of the face in dlib rectangle ``face``."""
        shape = self.predictor(frame, face)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def detect_frame(self, frame: np.ndarray) -> Optional[np.ndarray]:
        """(68, 2) landmarks of the largest face in one frame, or None."""
        faces = self.faces(frame)
        if not faces:
            return None
        return self.landmarks(frame, max(faces, key=lambda r: r.width() * r.height()))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (T, H, W) uint8 grey frames, got {frames.shape} {frames.dtype}")
        out = np.full((frames.shape[0], 68, 2), np.nan, dtype=np.float32)
        for t, frame in enumerate(frames):
            marks = self.detect_frame(np.ascontiguousarray(frame))
            if marks is not None:
                out[t] = marks
        return out
