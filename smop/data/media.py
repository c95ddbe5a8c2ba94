"""Reading audio-visual media with ffmpeg (argument lists, never a shell).

One ffmpeg run per file both decodes and describes it: the stream layout comes from the stream
description ffmpeg logs at level info, so no separate ffprobe process is started (a process
start costs about as much as decoding a short clip).

Frames are decoded to RGB (ffmpeg's conversion equals PyAV's, which torchvision.io.read_video
uses) and made grey with torchvision's ``Grayscale`` weights, as in the official LRS3
preparation: auto_avsr crops the RGB frames and its training transform makes them grey.
ffmpeg's own ``gray`` output is the luma plane, about a grey level brighter on colour video.
"""
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from smop.data.errors import DataError
from smop.data.inputs import SAMPLE_RATE, VIDEO_FPS

# torchvision.transforms.Grayscale (ITU-R 601-2 luma weights), which auto_avsr and Llama-AVSR apply.
GREY_WEIGHTS = (0.2989, 0.587, 0.114)
STREAMS = ("video", "audio")


class MediaError(DataError):
    pass


@dataclass
class StreamInfo:
    has_video: bool = False
    has_audio: bool = False
    fps: float = 0.0  # of the source video stream; 0 when ffmpeg does not know it
    sample_rate: int = 0  # of the source audio stream
    channel_layout: str = ""  # of the source audio stream, as ffmpeg names it: mono, stereo, 5.1, 3 channels
    width: int = 0  # of the decoded frames (after any rotation ffmpeg applies)
    height: int = 0

    @property
    def mono(self) -> bool:
        return self.channel_layout in ("mono", "1 channels")

    def has(self, stream: str) -> bool:
        return self.has_video if stream == "video" else self.has_audio


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H, W) uint8 grey, rounded (cv2.transform: 7x numpy's speed)."""
    t, h, w, _ = rgb.shape
    grey = cv2.transform(np.ascontiguousarray(rgb).reshape(t * h, w, 3), np.array([GREY_WEIGHTS], dtype=np.float32))
    return grey.reshape(t, h, w)


# "level" tags every log line with its level: stream descriptions are told from errors and from
# text in file names or metadata, which continues a line without a tag.
_LOG = ["-hide_banner", "-nostats", "-loglevel", "level+info"]
_SECTION = re.compile(r"^\[info\] (Input|Output) #(\d+), ")
_STREAM = re.compile(r"^\[info\] +Stream #\d+:\d+\S*: (Video|Audio): (.*)$")
_ERROR = re.compile(r"\[(?:error|fatal)\] ")


def _describe(log: List[str]) -> Optional[StreamInfo]:
    """Stream layout of input #0 and frame size of output #0 (the raw frames); None if the input never opened."""
    info, section = None, None
    for line in log:
        m = _SECTION.match(line)
        if m:
            section = (m.group(1), int(m.group(2)))
            if section == ("Input", 0):
                info = StreamInfo()
            continue
        if line.startswith("[info] Stream mapping:"):
            section = None
        m = _STREAM.match(line)
        if m and section == ("Input", 0):
            _source_stream(info, m.group(1), m.group(2))
        elif m and section == ("Output", 0) and m.group(1) == "Video":
            size = re.search(r", (\d+)x(\d+)\b", m.group(2))
            if size:
                info.width, info.height = int(size.group(1)), int(size.group(2))
    return info


def _source_stream(info: StreamInfo, kind: str, desc: str) -> None:
    """Fill ``info`` from the first video and first audio stream description of the input."""
    if kind == "Video" and not info.has_video:
        info.has_video = True
        fps = re.search(r", ([\d.]+)(k?) fps\b", desc)  # ffmpeg prints 25, 29.97 or 1k
        if fps:
            info.fps = float(fps.group(1)) * (1000 if fps.group(2) else 1)
    elif kind == "Audio" and not info.has_audio:
        info.has_audio = True
        audio = re.search(r", (\d+) Hz, ([^,]+)", desc)
        if audio:
            info.sample_rate, info.channel_layout = int(audio.group(1)), audio.group(2).strip()


def _last_error(log: List[str]) -> str:
    errors = [_ERROR.sub("", line, count=1) for line in log if _ERROR.search(line)]
    return (errors or log or ["no message"])[-1].strip()


def _decode(path: Path, streams: Sequence[str], fps: Optional[float],
            sample_rate: int) -> Tuple[Optional[StreamInfo], int, bytes, np.ndarray, List[str]]:
    """One ffmpeg run: raw RGB frames (at ``fps``, or the source rate if None) and mono float32
    audio of the ``streams`` asked for; returns the description, ffmpeg's status, frames, audio, log."""
    video = []
    if "video" in streams:
        vf = [] if fps is None else ["-vf", f"fps={fps}"]
        video = ["-map", "0:v:0", *vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    fd, audio_path = tempfile.mkstemp(suffix=".f32")
    os.close(fd)
    audio = ["-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", audio_path] if "audio" in streams else []
    try:
        cmd = ["ffmpeg", *_LOG, "-nostdin", "-y", "-i", str(path), *video, *audio]
        try:
            res = subprocess.run(cmd, capture_output=True, timeout=600)
        except FileNotFoundError as e:
            raise MediaError("ffmpeg not found (install ffmpeg)") from e
        wave = np.fromfile(audio_path, dtype="<f4").astype(np.float32)
    finally:
        os.unlink(audio_path)
    log = res.stderr.decode("utf-8", "replace").splitlines()
    return _describe(log), res.returncode, res.stdout, wave, log


def read_media(
    path: Path, fps: float = VIDEO_FPS, sample_rate: int = SAMPLE_RATE,
    need: Sequence[str] = STREAMS, optional: Sequence[str] = (),
) -> Tuple[StreamInfo, Optional[np.ndarray], Optional[np.ndarray]]:
    """Source description, (T, H, W) uint8 grey frames at ``fps`` and mono float32 audio at
    ``sample_rate``.

    Streams in ``need`` must be there (MediaError names the missing one); streams in ``optional``
    are decoded when present and None when absent; streams in neither are not decoded (None).
    Sources already at ``fps`` are decoded untouched in one run; the source rate is only known once
    ffmpeg has opened the file, so others are decoded a second time through the fps filter.
    """
    unknown = set(need) | set(optional)
    if not unknown <= set(STREAMS) or not unknown:
        raise ValueError(f"streams must be a non-empty subset of {STREAMS}, got need={need} optional={optional}")
    wanted = [s for s in STREAMS if s in need or s in optional]
    info, status, raw, wave, log = _decode(path, wanted, None, sample_rate)
    if info is not None:
        for s in need:
            # A missing stream makes ffmpeg fail too (the -map matches nothing): name the cause, not the symptom.
            if not info.has(s):
                raise MediaError(f"{path}: no {s} stream")
        present = [s for s in wanted if info.has(s)]
        refit = "video" in present and abs(info.fps - fps) >= 0.01
        if present != wanted or refit:
            if not present:
                raise MediaError(f"{path}: no {' or '.join(wanted)} stream")
            wanted = present
            info, status, raw, wave, log = _decode(path, wanted, fps if refit else None, sample_rate)
    if info is None or status != 0:
        raise MediaError(f"{path}: decoding failed: {_last_error(log)}")
    frames = None
    if "video" in wanted:
        frame = info.width * info.height * 3
        if frame == 0 or len(raw) < frame:
            raise MediaError(f"{path}: no decodable video frames")
        if len(raw) % frame:
            raise MediaError(f"{path}: truncated video stream")
        frames = rgb_to_grey(np.frombuffer(raw, dtype=np.uint8).reshape(-1, info.height, info.width, 3))
    if "audio" in wanted:
        if wave.size == 0:
            raise MediaError(f"{path}: no decodable audio")
    else:
        wave = None
    return info, frames, wave
