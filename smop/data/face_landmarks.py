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

import cv2
import numpy as np

DETECTORS = ("hog", "cnn")
UPSAMPLE = 1  # as AV-HuBERT's preparation: finds faces down to about 40 px wide
DETECT_EVERY = 5  # whole-frame searches on every 5th frame, tracking in between
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


def _largest(faces: list) -> Optional[object]:
    return max(faces, key=lambda r: r.width() * r.height()) if faces else None


def _dlib():
    try:
        import dlib
    except ImportError as e:
        raise DetectorUnavailable(f"dlib is not installed: {INSTALL_HINT}") from e
    return dlib


class FaceLandmarkDetector:
    """(T, H, W) uint8 grey frames -> (T, 68, 2) float32 landmarks in pixels (x, y), NaN rows where
    no face is found; the largest face where the whole frame is searched, that face where it is tracked.

    ``detector``: "hog" (dlib's frontal face detector, default) or "cnn" (its MMOD CNN, about two
    orders of magnitude slower on a CPU). ``upsample``: how often the detector doubles the frame
    first (1, as AV-HuBERT: finds faces down to about 40 px wide). The model paths default to the
    files of face-recognition-models.

    ``detect_every``: the whole frame is searched on every k-th frame (1: every frame, as in
    AV-HuBERT's preparation); in between, the face is tracked: the detector searches a small window
    around the previous frame's face, rescaled so that the face is ``TRACK_FACE`` px wide, without
    upsampling (about a sixth of the work), and where it finds no face there the whole frame is
    searched. The shape predictor runs on every frame either way. At 5, detection runs several times
    faster and the mouth centres are as close to the truth as at 1 (bench/RESULTS.md, landmark_speed).

    A whole-frame search on a large frame (HD video), which upsampling would make larger still,
    runs on the frame scaled so that its long side is ``MAX_SEARCH_SIDE``, without upsampling: faces
    from about 80 px x long side / MAX_SEARCH_SIDE wide are found (107 px in 720p video). Frames up
    to MAX_SEARCH_SIDE / 2**upsample (480 px with upsample 1; LRS3's are 224) are searched as is.
    """

    TRACK_FACE = 100  # px: HOG's 80-px window still fits a face that shrank by a fifth
    TRACK_WINDOW = 1.6  # side of the tracking window, in face widths
    MAX_SEARCH_SIDE = 960  # px: the long side of the image a whole-frame search runs on, at most

    def __init__(
        self,
        detector: str = DETECTORS[0],
        upsample: int = UPSAMPLE,
        predictor_path: Optional[Union[str, Path]] = None,
        cnn_path: Optional[Union[str, Path]] = None,
        detect_every: int = DETECT_EVERY,
    ):
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        dlib = _dlib()
        self._rectangle = dlib.rectangle
        self.kind, self.upsample, self.detect_every = detector, upsample, detect_every
        self.predictor = dlib.shape_predictor(str(predictor_path or model_file(PREDICTOR_FILE)))
        if detector == "hog":
            self._detector = dlib.get_frontal_face_detector()
        else:
            self._detector = dlib.cnn_face_detection_model_v1(str(cnn_path or model_file(CNN_FILE)))

    def faces(self, frame: np.ndarray, upsample: Optional[int] = None) -> list:
        """dlib rectangles of the faces found in one (H, W) uint8 frame."""
        found = self._detector(frame, self.upsample if upsample is None else upsample)
        return list(found) if self.kind == "hog" else [d.rect for d in found]

    def face_near(self, frame: np.ndarray, previous) -> Optional[object]:
        """The largest face found in a window around the dlib rectangle ``previous``, or None."""
        w = max(previous.width(), previous.height())
        c = previous.center()
        half = self.TRACK_WINDOW * w / 2
        x0, y0 = max(0, int(c.x - half)), max(0, int(c.y - half))
        x1, y1 = min(frame.shape[1], int(c.x + half) + 1), min(frame.shape[0], int(c.y + half) + 1)
        if x1 - x0 < w / 2 or y1 - y0 < w / 2:  # the face has left the frame
            return None
        return self._largest_scaled(frame[y0:y1, x0:x1], self.TRACK_FACE / w, x0, y0)

    def _largest_scaled(self, image: np.ndarray, scale: float, x0: int = 0, y0: int = 0) -> Optional[object]:
        """The largest face in ``image`` (at (x0, y0) of its frame) searched scaled by ``scale``
        without upsampling, as a rectangle of the frame; or None."""
        scaled = cv2.resize(
            image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        )
        r = _largest(self.faces(scaled, upsample=0))
        if r is None:
            return None
        return self._rectangle(
            int(round(x0 + r.left() / scale)),
            int(round(y0 + r.top() / scale)),
            int(round(x0 + r.right() / scale)),
            int(round(y0 + r.bottom() / scale)),
        )

    def landmarks(self, frame: np.ndarray, face) -> np.ndarray:
        """(68, 2) float32 points of the face in dlib rectangle ``face``."""
        shape = self.predictor(frame, face)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def largest_face(self, frame: np.ndarray) -> Optional[object]:
        """The largest face of a whole-frame search (on the frame scaled down first if it is large)."""
        side = max(frame.shape[:2])
        if side * 2**self.upsample <= self.MAX_SEARCH_SIDE:
            return _largest(self.faces(frame))
        return self._largest_scaled(frame, self.MAX_SEARCH_SIDE / side)

    def detect_frame(self, frame: np.ndarray) -> Optional[np.ndarray]:
        """(68, 2) landmarks of the largest face in one frame, or None."""
        face = self.largest_face(frame)
        return None if face is None else self.landmarks(frame, face)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (T, H, W) uint8 grey frames, got {frames.shape} {frames.dtype}")
        out = np.full((frames.shape[0], 68, 2), np.nan, dtype=np.float32)
        face = None
        for t, frame in enumerate(frames):
            frame = np.ascontiguousarray(frame)
            tracked = self.face_near(frame, face) if face is not None and t % self.detect_every else None
            face = self.largest_face(frame) if tracked is None else tracked
            if face is not None:
                out[t] = self.landmarks(frame, face)
        return out
