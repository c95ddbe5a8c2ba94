"""Reading audio-visual media with ffmpeg (argument lists, never a shell).

One ffmpeg run per file both decodes and describes it: the stream layout comes from the stream
description ffmpeg logs at level info, so no separate ffprobe process is started (a process
start costs about as much as decoding a short clip).
"""
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np


class MediaError(ValueError):
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


def _decode(path: Path, fps: Optional[float], sample_rate: int) -> Tuple[StreamInfo, bytes, np.ndarray]:
    """One ffmpeg run: source description, raw gray frames (at ``fps``, or the source rate if None), mono audio."""
    vf = [] if fps is None else ["-vf", f"fps={fps}"]
    fd, audio_path = tempfile.mkstemp(suffix=".f32")
    os.close(fd)
    try:
        cmd = ["ffmpeg", *_LOG, "-nostdin", "-y", "-i", str(path),
               "-map", "0:v:0", *vf, "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1",
               "-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", audio_path]
        try:
            res = subprocess.run(cmd, capture_output=True, timeout=600)
        except FileNotFoundError as e:
            raise MediaError("ffmpeg not found (install ffmpeg)") from e
        wave = np.fromfile(audio_path, dtype="<f4").astype(np.float32)
    finally:
        os.unlink(audio_path)
    log = res.stderr.decode("utf-8", "replace").splitlines()
    info = _describe(log)
    # A missing stream makes ffmpeg fail too (the -map matches nothing): name the cause, not the symptom.
    if info is not None and not info.has_video:
        raise MediaError(f"{path}: no video stream")
    if info is not None and not info.has_audio:
        raise MediaError(f"{path}: no audio stream")
    if info is None or res.returncode != 0:
        raise MediaError(f"{path}: decoding failed: {_last_error(log)}")
    return info, res.stdout, wave


def read_media(path: Path, fps: float = 25.0, sample_rate: int = 16000) -> Tuple[StreamInfo, np.ndarray, np.ndarray]:
    """Source description, (T, H, W) uint8 grayscale frames at ``fps``, and mono float32 audio at ``sample_rate``.

    Sources already at ``fps`` are decoded untouched in one run; the source rate is only known once
    ffmpeg has opened the file, so others are decoded a second time through the fps filter.
    """
    info, raw, wave = _decode(path, None, sample_rate)
    if abs(info.fps - fps) >= 0.01:
        info, raw, wave = _decode(path, fps, sample_rate)
    frame = info.width * info.height
    if frame == 0 or len(raw) < frame:
        raise MediaError(f"{path}: no decodable video frames")
    if len(raw) % frame:
        raise MediaError(f"{path}: truncated video stream")
    if wave.size == 0:
        raise MediaError(f"{path}: no decodable audio")
    return info, np.frombuffer(raw, dtype=np.uint8).reshape(-1, info.height, info.width), wave
