"""A media file -> the inputs of a model, the way data preparation makes them.

ffmpeg decodes the file (smop.data.media), mouth crops come from ``smop.data.mouth_roi`` with the
crop settings the model was trained with (the pack's mouth_crop.yaml), and the audio is fitted to
the video and stored as 16-bit PCM as in ``smop.data.lrs3.prepare``: a prepared utterance and its
source file give the model the same input.
"""

import io
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import soundfile

from smop.data.alignment import MAX_AV_MISMATCH, av_tolerance, fit_audio
from smop.data.errors import DataError
from smop.data.inputs import SAMPLE_RATE, VIDEO_FPS
from smop.data.landmarks import LandmarkError, load_landmarks, match_frames
from smop.data.media import STALL_TIMEOUT, MediaError, StreamInfo, read_media
from smop.data.mouth_roi import AlignmentError, MouthCropSettings

_FIELDS = re.compile(r"\{(\w+)\}")
PATTERN_FIELDS = ("stem", "name", "parent", "dir")


class InputError(DataError):
    pass


class LandmarksRequired(InputError):
    pass


_detectors = threading.local()  # dlib's detectors are not shared between the reading threads


def detect_landmarks(frames: np.ndarray, source: Path) -> np.ndarray:
    """(T, H, W) uint8 grey frames of ``source`` -> (T, 68, 2) landmarks, NaN rows where no face
    (dlib's HOG detector and 68-point model, as ``smop.bin.detect_landmarks`` finds them).

    The one place transcription gets landmarks when none were given for a file.
    """
    from smop.data.face_landmarks import DetectorUnavailable, FaceLandmarkDetector

    if getattr(_detectors, "detector", None) is None:
        try:
            _detectors.detector = FaceLandmarkDetector()
        except DetectorUnavailable as e:
            raise LandmarksRequired(
                f"{source}: no landmarks for its video and no face detector ({e}); or pass --landmarks (a (T, 68, 2) "
                ".npy per video: a file, a folder of <name>.npy or a pattern such as 'marks/{parent}/{stem}.npy')"
            ) from None
    return _detectors.detector(frames)


class LandmarkFiles:
    """Where each input file's landmarks are, from ``--landmarks``:

    - none: detected (``detect_landmarks``);
    - ``FILE.npy``: the landmarks of the one input file;
    - a folder: ``<folder>/<stem>.npy`` for input ``<stem>.<ext>``;
    - a pattern with ``{stem}``, ``{name}`` (file name), ``{parent}`` (its folder's name), ``{dir}``
      (its folder): e.g. ``landmarks/test/{parent}/{stem}.npy`` for LRS3's layout.
    """

    def __init__(self, spec: Optional[str], n_files: int):
        self.spec = spec
        self.kind = "detect"
        if spec is None:
            return
        fields = set(_FIELDS.findall(spec))
        if fields:
            if fields - set(PATTERN_FIELDS):
                raise ValueError(
                    f"--landmarks {spec}: unknown fields {sorted(fields - set(PATTERN_FIELDS))}; "
                    f"use {', '.join('{' + f + '}' for f in PATTERN_FIELDS)}"
                )
            self.kind = "pattern"
        elif Path(spec).is_dir():
            self.kind = "folder"
        elif Path(spec).is_file():
            if n_files != 1:
                raise ValueError(
                    f"--landmarks {spec} is one file's landmarks but {n_files} files were given; "
                    "pass a folder or a pattern with {stem}"
                )
            self.kind = "file"
        else:
            raise ValueError(f"--landmarks {spec}: no such file or folder (and no {{stem}} pattern)")

    def path_for(self, media: Path) -> Optional[Path]:
        """The landmarks file of ``media``; None when they are to be detected."""
        if self.kind == "detect":
            return None
        if self.kind == "file":
            return Path(self.spec)
        if self.kind == "folder":
            return Path(self.spec) / f"{media.stem}.npy"
        values = {"stem": media.stem, "name": media.name, "parent": media.parent.name, "dir": str(media.parent)}
        return Path(_FIELDS.sub(lambda m: values[m.group(1)], self.spec))


@dataclass
class MediaInputs:
    """A file's model inputs (None: absent) and what happened on the way."""

    speech: Optional[np.ndarray] = None
    video: Optional[np.ndarray] = None
    seconds: float = 0.0
    notes: List[str] = field(default_factory=list)


def as_stored(wave: np.ndarray) -> np.ndarray:
    """The waveform as data preparation stores it (16-bit PCM WAV) and decoding reads it back."""
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    buffer.seek(0)
    return soundfile.read(buffer, dtype="float32")[0]


def landmarks_for(path: Path, frames: np.ndarray, landmarks: Optional[Path]) -> np.ndarray:
    """The (T, 68, 2) landmarks of ``frames``: read from ``landmarks``, or detected."""
    if landmarks is None:
        return detect_landmarks(frames, path)
    if not landmarks.is_file():
        raise LandmarkError(f"{path}: no landmarks file {landmarks}")
    return load_landmarks(str(landmarks))


class NoFace(InputError):
    pass


def mouth_crops(path: Path, frames: np.ndarray, landmarks: Optional[Path], crop: MouthCropSettings) -> np.ndarray:
    """(T, S, S) uint8 mouth crops; ``NoFace`` when no face is usable."""
    frames, marks = match_frames(frames, landmarks_for(path, frames, landmarks), path)
    try:
        return crop.crop(frames, marks)
    except (LandmarkError, AlignmentError) as e:
        raise NoFace(f"{path}: no usable face ({e})") from e


def read_inputs(
    path: Path,
    modalities: Sequence[str],
    crop: Optional[MouthCropSettings],
    landmarks: Optional[Path],
    stall_timeout: float = STALL_TIMEOUT,
) -> MediaInputs:
    """A file's inputs for a model of ``modalities`` ("audio", "video").

    An audio-visual model takes a file without video, or without a usable face, with the video
    left out (and said so in ``notes``); a file without audio with the audio left out. A video-only
    (VSR) model refuses a file without a usable face; an audio-only model one without audio. A file
    ffmpeg reports damage in is decoded as far as it goes, with a note; what then goes wrong with it
    (landmarks or audio that no longer fit) is blamed on the damage.
    """
    path = Path(path)
    both = set(modalities) == {"audio", "video"}
    need = () if both else tuple(modalities)
    optional = tuple(modalities) if both else ()
    info, frames, wave = read_media(path, VIDEO_FPS, SAMPLE_RATE, need, optional, stall_timeout)
    try:
        out = _model_inputs(path, info, frames, wave, crop, landmarks, both)
    except DataError as e:
        if info.damage:
            raise MediaError(f"{path}: damaged file (ffmpeg: {info.damage}); {e}") from None
        raise
    if info.damage:
        out.notes.append(f"{path}: damaged file (ffmpeg: {info.damage}): decoded as far as it goes")
    return out


def _model_inputs(
    path: Path,
    info: StreamInfo,
    frames: Optional[np.ndarray],
    wave: Optional[np.ndarray],
    crop: Optional[MouthCropSettings],
    landmarks: Optional[Path],
    both: bool,
) -> MediaInputs:
    out = MediaInputs()
    if frames is not None:
        if crop is None:
            raise InputError(
                f"{path}: the model reads video but its pack records no mouth-crop settings (its training "
                "data had no mouth_crop.yaml when it was packed); pack it again from data prepared by this smop"
            )
        try:
            out.video = mouth_crops(path, frames, landmarks, crop)
        except NoFace as e:
            if not both:
                raise
            out.notes.append(f"{e}: decoded with the video blanked, as modality dropout blanks it in training")
        else:
            if wave is not None:
                frames_seconds = out.video.shape[0] / VIDEO_FPS
                size = wave.size
                wave, diff = fit_audio(wave, out.video.shape[0], path, av_tolerance(frames_seconds))
                if diff > MAX_AV_MISMATCH:
                    out.notes.append(
                        f"{path}: audio lasts {size / SAMPLE_RATE:.2f} s, video {frames_seconds:.2f} s: "
                        "audio cut or padded to the video's length"
                    )
    elif both:
        still = " (only a still picture, such as cover art)" if info.still_picture else ""
        out.notes.append(
            f"{path}: no video stream{still}: decoded with the video blanked, as modality dropout blanks it in training"
        )
    if wave is not None:
        out.speech = as_stored(wave)
    elif both:
        out.notes.append(
            f"{path}: no audio stream: decoded with the audio blanked, as modality dropout blanks it in training"
        )
    if out.speech is None and out.video is None:
        raise NoFace(f"{path}: no audio stream and no usable face")
    out.seconds = out.speech.size / SAMPLE_RATE if out.speech is not None else out.video.shape[0] / VIDEO_FPS
    return out
