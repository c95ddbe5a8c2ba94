"""LRS3 layout -> Kaldi data dir with 16 kHz wav files and uint8 mouth-ROI arrays.

    <corpus>/<subset>/<speaker>/<video>.mp4   + <video>.txt
    <landmarks>/<subset>/<speaker>/<video>.npy   (T, 68, 2), NaN where no face

Each video is handled on its own (in parallel): a bad file is skipped with its reason in the
report, never silently. Long clips are cut at word boundaries.
"""

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import soundfile

from smop.data.alignment import fit_audio
from smop.data.errors import DataError
from smop.data.inputs import SAMPLE_RATE, SAMPLES_PER_FRAME, VIDEO_FPS
from smop.data.landmarks import LandmarkError, load_landmarks, match_frames
from smop.data.lrs3.transcript import TranscriptError, read_transcript, split_by_words
from smop.data.media import read_media
from smop.data.mouth_roi import AlignmentError, MouthCropSettings
from smop.utils.io import atomic_write

logger = logging.getLogger(__name__)

_BAD_ID = re.compile(r"\s")


@dataclass
class Job:
    video: Path
    landmarks: Optional[Path]
    utt_prefix: str
    speaker: str
    max_seconds: Optional[float]


@dataclass
class Utterance:
    utt: str
    speaker: str
    text: str
    wav: str
    npy: str
    frames: int


@dataclass
class Result:
    video: Path
    utterances: List[Utterance] = field(default_factory=list)
    skipped: Optional[str] = None  # reason
    notes: List[Tuple[str, str]] = field(default_factory=list)  # (kind, detail)


class IdListError(DataError):
    """An include or exclude id list that does not fit the corpus (``which``: include or exclude)."""

    def __init__(self, message: str, which: str):
        super().__init__(message)
        self.which = which


def find_jobs(
    corpus: Path,
    subsets: Sequence[str],
    landmarks_root: Optional[Path],
    max_seconds: Optional[float],
    include: Optional[set] = None,
    exclude: Optional[set] = None,
) -> List[Job]:
    """Every ``<subset>/<speaker>/<video>.mp4``; ids are ``<speaker>-<video>``, filtered by the id lists
    (``<speaker>/<video>`` keys). An id list with ids that name no video here is refused: made for
    another corpus path, it would keep nothing (include) or let held-out videos into training (exclude)."""
    jobs = []
    for subset in subsets:
        root = corpus / subset
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such LRS3 subset directory")
        for mp4 in sorted(root.glob("*/*.mp4")):
            speaker = mp4.parent.name
            marks = None if landmarks_root is None else landmarks_root / subset / speaker / f"{mp4.stem}.npy"
            jobs.append(
                Job(mp4, marks, f"{speaker}-{mp4.stem}", speaker, max_seconds if subset == "pretrain" else None)
            )
    keys = {f"{job.speaker}/{job.video.stem}" for job in jobs}
    for name, ids in (("include", include), ("exclude", exclude)):
        if ids is None:
            continue
        unknown = sorted(ids - keys)
        if not ids or unknown:
            where = f"{corpus}/{{{','.join(subsets)}}}"
            what = (
                "is empty"
                if not ids
                else f"has {len(unknown)} of {len(ids)} ids that are no video of {where}, e.g. {unknown[:3]}"
            )
            raise IdListError(
                f"the {name} list {what}: a list made for another corpus path? Give the right list "
                f"(a recipe's data/local/valid.id is made again when removed)",
                name,
            )
    if include is not None:
        jobs = [job for job in jobs if f"{job.speaker}/{job.video.stem}" in include]
    if exclude is not None:
        jobs = [job for job in jobs if f"{job.speaker}/{job.video.stem}" not in exclude]
    return jobs


def process(job: Job, media_dir: Path, crop: MouthCropSettings) -> Result:
    """One video -> one or more utterances (written to ``media_dir``) with its mouths cropped by
    ``crop``, or a skip with its reason."""
    res = Result(job.video)
    try:
        if _BAD_ID.search(job.utt_prefix):
            raise DataError(f"id {job.utt_prefix!r} contains whitespace, which Kaldi tables cannot hold")
        transcript = read_transcript(job.video.with_suffix(".txt"))
        info, frames, wave = read_media(job.video, VIDEO_FPS, SAMPLE_RATE)  # raises for a missing stream
        if job.landmarks is None or not job.landmarks.exists():
            raise LandmarkError(f"no landmarks file {job.landmarks}")
        marks = load_landmarks(str(job.landmarks))
        frames, marks = match_frames(frames, marks, job.landmarks)
        n = frames.shape[0]
        if n < crop.smooth_window:  # as the official preparation, which skips these
            raise AlignmentError(f"{n} frames, fewer than the {crop.smooth_window}-frame landmark smoothing window")
        missing = int(np.isnan(marks).any(axis=(1, 2)).sum())
        if missing:
            res.notes.append(("landmarks interpolated", f"{missing}/{n} frames"))
        rois = crop.crop(frames, marks)
        if info.sample_rate != SAMPLE_RATE or not info.mono:
            res.notes.append(("audio converted to 16 kHz mono", f"{info.sample_rate} Hz {info.channel_layout}"))
        wave, diff = fit_audio(wave, n, job.video)
        if diff > 1 / VIDEO_FPS:  # AAC priming and padding differ by a few ms; report more than a frame
            res.notes.append(("audio length fitted to the video", f"{diff * 1000:.0f} ms"))

        if job.max_seconds is not None and n / VIDEO_FPS > job.max_seconds:
            if not transcript.words:
                raise TranscriptError(f"{job.video.with_suffix('.txt')}: long clip without word timings")
            segments = split_by_words(transcript.words, job.max_seconds)
            pieces = [
                (f"{job.utt_prefix}-{i:02d}", text, int(round(s * VIDEO_FPS)), int(round(e * VIDEO_FPS)))
                for i, (text, s, e) in enumerate(segments)
            ]
        else:
            pieces = [(job.utt_prefix, transcript.text, 0, n)]
        for utt, text, f0, f1 in pieces:
            f1 = min(f1, n)
            if f1 - f0 < 2:
                res.notes.append(("segment shorter than 2 frames dropped", utt))
                continue
            wav_path = media_dir / f"{utt}.wav"
            npy_path = media_dir / f"{utt}.npy"
            with atomic_write(wav_path, "wb") as f:
                soundfile.write(
                    f,
                    wave[f0 * SAMPLES_PER_FRAME : f1 * SAMPLES_PER_FRAME],
                    SAMPLE_RATE,
                    format="WAV",
                    subtype="PCM_16",
                )
            with atomic_write(npy_path, "wb") as f:
                np.save(f, np.ascontiguousarray(rois[f0:f1]))
            res.utterances.append(Utterance(utt, job.speaker, text.lower(), str(wav_path), str(npy_path), f1 - f0))
        if not res.utterances:
            raise DataError("no usable segment")
    except (DataError, OSError) as e:  # bad data is a skip with its reason; anything else is a bug
        res.skipped = f"{type(e).__name__}: {e}"
        res.utterances = []
    return res
