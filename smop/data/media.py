"""Reading audio-visual media with ffmpeg/ffprobe (argument lists, never a shell)."""
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class MediaError(ValueError):
    pass


@dataclass
class StreamInfo:
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    sample_rate: int = 0
    channels: int = 0
    duration: float = 0.0


def _run(cmd, what: str, path) -> bytes:
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=600)
    except FileNotFoundError as e:
        raise MediaError(f"{cmd[0]} not found (install ffmpeg)") from e
    if res.returncode != 0:
        err = res.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MediaError(f"{path}: {what} failed: {err[-1] if err else 'no message'}")
    return res.stdout


def probe(path: Path) -> StreamInfo:
    out = _run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)], "ffprobe", path)
    try:
        info = json.loads(out)
    except json.JSONDecodeError as e:
        raise MediaError(f"{path}: unreadable ffprobe output") from e
    streams = info.get("streams", [])
    v = next((s for s in streams if s.get("codec_type") == "video"), None)
    a = next((s for s in streams if s.get("codec_type") == "audio"), None)
    si = StreamInfo(has_video=v is not None, has_audio=a is not None)
    if v is not None:
        si.width, si.height = int(v.get("width", 0)), int(v.get("height", 0))
        num, _, den = v.get("avg_frame_rate", "0/1").partition("/")
        si.fps = float(num) / float(den or 1) if float(den or 1) else 0.0
    if a is not None:
        si.sample_rate, si.channels = int(a.get("sample_rate", 0)), int(a.get("channels", 0))
    si.duration = float(info.get("format", {}).get("duration", 0.0) or 0.0)
    return si


def read_frames_and_audio(path: Path, info: StreamInfo, fps: float = 25.0, sample_rate: int = 16000):
    """Both streams in one ffmpeg run: (T, H, W) uint8 grayscale frames, mono float32 audio."""
    vf = [] if abs(info.fps - fps) < 0.01 else ["-vf", f"fps={fps}"]
    fd, audio_path = tempfile.mkstemp(suffix=".f32")
    os.close(fd)
    try:
        raw = _run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(path),
                    "-map", "0:v:0", *vf, "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1",
                    "-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", audio_path],
                   "decoding", path)
        wave = np.fromfile(audio_path, dtype="<f4").astype(np.float32)
    finally:
        os.unlink(audio_path)
    frame = info.width * info.height
    if frame == 0 or len(raw) < frame:
        raise MediaError(f"{path}: no decodable video frames")
    if len(raw) % frame:
        raise MediaError(f"{path}: truncated video stream")
    if wave.size == 0:
        raise MediaError(f"{path}: no decodable audio")
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, info.height, info.width), wave
