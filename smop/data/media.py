"""Reading audio-visual media with ffmpeg (argument lists, never a shell).

One ffmpeg run per file both decodes and describes it: the stream layout comes from the stream
description ffmpeg logs at level info, so no separate ffprobe process is started (a process
start costs about as much as decoding a short clip).

Frames are decoded to RGB (ffmpeg's conversion equals PyAV's, which torchvision.io.read_video
uses) and made grey with torchvision's ``Grayscale`` weights, as in the official LRS3
preparation: auto_avsr crops the RGB frames and its training transform makes them grey.
ffmpeg's own ``gray`` output is the luma plane, about a grey level brighter on colour video.
The RGB is made grey a chunk of frames at a time as ffmpeg writes it, never held whole.
"""

import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from smop.data.errors import DataError
from smop.data.inputs import SAMPLE_RATE, VIDEO_FPS

# torchvision.transforms.Grayscale (ITU-R 601-2 luma weights), which auto_avsr and Llama-AVSR apply.
GREY_WEIGHTS = (0.2989, 0.587, 0.114)
STREAMS = ("video", "audio")
# Frames made grey at a time, as ffmpeg writes them: the RGB of a whole file is never held (a
# minute of 720p RGB is 4 GB; its grey frames 1.3 GB).
CHUNK_FRAMES = 64
SPILL_BYTES = 1 << 30  # grey frames held in memory at most; more go to a temporary file (TMPDIR)
# Seconds an ffmpeg run may go without progress (frames or log read, audio written) before it is
# killed: a stalled input (a pipe, a hung network mount) fails instead of hanging the caller.
STALL_TIMEOUT = 60.0
# ffmpeg opens only local files: a name is never a URL (http:, concat:, ...), and a file (a playlist)
# cannot make ffmpeg open one either. The input is named file:<absolute path>, so that a colon in a
# file name is never read as a protocol.
LOCAL_ONLY = ["-protocol_whitelist", "file"]
_PROTOCOL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class MediaError(DataError):
    pass


@dataclass
class StreamInfo:
    has_video: bool = False  # a moving picture: a still one (cover art, "attached pic") is not video
    has_audio: bool = False
    still_picture: bool = False  # an attached picture (an audio file's cover art)
    damage: str = ""  # the first error ffmpeg reported while decoding (a truncated or damaged file)
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


class _Runs:
    """The ffmpeg runs in progress and their temporary audio files, for ``stop_all``."""

    def __init__(self):
        self.lock, self.live, self.stopped = threading.Lock(), {}, threading.Event()

    def add(self, tmp: str) -> None:
        with self.lock:
            if self.stopped.is_set():
                raise MediaError("stopped: the program is ending")
            self.live[tmp] = None

    def started(self, tmp: str, proc: subprocess.Popen) -> None:
        with self.lock:
            self.live[tmp] = proc
        if self.stopped.is_set():
            proc.kill()

    def done(self, tmp: str) -> None:
        with self.lock:
            self.live.pop(tmp, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)

    def stop_all(self) -> None:
        self.stopped.set()
        with self.lock:
            live = list(self.live.items())
        for tmp, proc in live:
            if proc is not None and proc.poll() is None:
                proc.kill()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


_RUNS = _Runs()


def stop_all() -> None:
    """Kill every ffmpeg run in progress and remove its temporary file; reads started later fail.
    For a program that ends on a signal while threads are reading media (they are not waited for)."""
    _RUNS.stop_all()


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
    if kind == "Video" and desc.rstrip().endswith("(attached pic)"):
        info.still_picture = True
    elif kind == "Video" and not info.has_video:
        info.has_video = True
        fps = re.search(r", ([\d.]+)(k?) fps\b", desc)  # ffmpeg prints 25, 29.97 or 1k
        if fps:
            info.fps = float(fps.group(1)) * (1000 if fps.group(2) else 1)
    elif kind == "Audio" and not info.has_audio:
        info.has_audio = True
        audio = re.search(r", (\d+) Hz, ([^,]+)", desc)
        if audio:
            info.sample_rate, info.channel_layout = int(audio.group(1)), audio.group(2).strip()


_OBJECT = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\] ")  # "[matroska,webm @ 0x55e5...] ", who logged it


def _damage(log: List[str]) -> str:
    """The first error ffmpeg logged while decoding (after the stream mapping): a file that decodes
    in part (truncated, bit errors) exits 0 with these in its log."""
    decoding = False
    for line in log:
        if line.startswith("[info] Stream mapping:"):
            decoding = True
        elif decoding and _ERROR.search(line):
            return _OBJECT.sub("", _ERROR.sub("", line, count=1)).strip()
    return ""


def _last_error(log: List[str]) -> str:
    errors = [_ERROR.sub("", line, count=1) for line in log if _ERROR.search(line)]
    return (errors or log or ["no message"])[-1].strip()


class _Decoded(NamedTuple):
    info: Optional[StreamInfo]
    status: int
    frames: Optional[np.ndarray]  # (T, H, W) grey; None when video was not asked for or never sized
    partial: int  # bytes after the last whole frame
    wave: np.ndarray
    log: List[str]


class _GreyFrames:
    """RGB bytes in, grey frames out, a chunk at a time. Past SPILL_BYTES of grey frames (a long
    recording) they go to an unnamed temporary file, returned memory-mapped read-only: memory then
    holds what the kernel keeps cached, not the whole recording."""

    def __init__(self):
        self.pending, self.chunks, self.shape, self.count, self.file = bytearray(), [], None, 0, None

    def add(self, data: bytes, info: Optional[StreamInfo]) -> None:
        self.pending += data
        if info is None or info.width == 0:
            return
        self.shape = (info.height, info.width)
        size = info.width * info.height * 3
        n = len(self.pending) // size
        if n:
            view = memoryview(self.pending)[: n * size]
            rgb = np.frombuffer(view, np.uint8).reshape(n, info.height, info.width, 3)
            self._store(rgb_to_grey(rgb))
            del rgb
            view.release()
            del self.pending[: n * size]

    def _store(self, grey: np.ndarray) -> None:
        if self.file is None and (self.count + grey.shape[0]) * grey[0].nbytes > SPILL_BYTES:
            self.file = tempfile.TemporaryFile(prefix="smop_frames_")
            for chunk in self.chunks:
                chunk.tofile(self.file)
            self.chunks = []
        if self.file is None:
            self.chunks.append(grey)
        else:
            grey.tofile(self.file)
        self.count += grey.shape[0]

    def frames(self) -> Optional[np.ndarray]:
        if self.shape is None:
            return None
        if self.file is not None:
            self.file.flush()
            frames = np.memmap(self.file, np.uint8, "r", shape=(self.count, *self.shape))
            self.file.close()  # the mapping keeps the (already unlinked) file until it is released
            return frames
        return np.concatenate(self.chunks) if self.chunks else np.zeros((0, *self.shape), np.uint8)


def _frames_info(log: List[str]) -> Optional[StreamInfo]:
    """The description, once it gives the size of the output frames (logged before the first frame)."""
    info = _describe(log)
    return info if info is not None and info.width > 0 else None


def _decode(
    path: Path,
    streams: Sequence[str],
    fps: Optional[float],
    sample_rate: int,
    stop: Callable[[StreamInfo], bool] = lambda info: False,
    stall_timeout: float = STALL_TIMEOUT,
) -> _Decoded:
    """One ffmpeg run: RGB frames (at ``fps``, or the source rate if None) made grey as they come,
    and mono float32 audio, of the ``streams`` asked for; with the description, status and log.
    ``stop(info)``, asked once the video is described, ends the run before its first frame."""
    video = []
    if "video" in streams:
        vf = [] if fps is None else ["-vf", f"fps={fps}"]
        video = ["-map", "0:V:0", *vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    fd, audio_path = tempfile.mkstemp(suffix=".f32")
    os.close(fd)
    try:
        _RUNS.add(audio_path)
    except MediaError:
        os.unlink(audio_path)
        raise
    audio = (
        ["-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", audio_path] if "audio" in streams else []
    )
    cmd = ["ffmpeg", *_LOG, "-nostdin", "-y", *LOCAL_ONLY, "-i", f"file:{Path(path).absolute()}", *video, *audio]
    log: List[str] = []

    progress = [time.monotonic()]

    def read_log(stream):  # stderr, read beside stdout so that neither pipe fills up
        for line in stream:
            log.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            progress[0] = time.monotonic()

    try:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError as e:
            raise MediaError("ffmpeg not found (install ffmpeg)") from e
        _RUNS.started(audio_path, proc)
        timed_out, finished = threading.Event(), threading.Event()

        def watch():  # kills ffmpeg once it has made no progress for stall_timeout seconds
            written = 0
            while not finished.wait(min(1.0, stall_timeout / 4)):
                with contextlib.suppress(OSError):
                    size = os.path.getsize(audio_path)
                    if size != written:
                        written, progress[0] = size, time.monotonic()
                if time.monotonic() - progress[0] > stall_timeout:
                    timed_out.set()
                    proc.kill()
                    return

        watchdog = threading.Thread(target=watch, daemon=True)
        reader = threading.Thread(target=read_log, args=(proc.stderr,), daemon=True)
        watchdog.start()
        reader.start()
        grey, info, stopped = _GreyFrames(), None, False
        try:
            while True:
                if info is None and video:
                    info = _frames_info(list(log))
                    if info is not None and stop(info):
                        stopped = True
                        proc.kill()
                        break
                size = info.width * info.height * 3 if info is not None else 0
                data = proc.stdout.read(size * CHUNK_FRAMES if size else 1 << 20)  # short only at the end
                progress[0] = time.monotonic()
                grey.add(data, info)
                if not data:
                    break
            status = proc.wait()
        finally:
            finished.set()
            if proc.poll() is None:  # an error here: ffmpeg is not left running
                proc.kill()
                proc.wait()
            reader.join()  # ffmpeg has exited: its log ends
            proc.stdout.close()
            proc.stderr.close()
        if timed_out.is_set():
            raise MediaError(f"{path}: decoding made no progress for {stall_timeout:g} s (a stalled input?); given up")
        if _RUNS.stopped.is_set():
            raise MediaError(f"{path}: stopped: the program is ending")
        wave = np.fromfile(audio_path, dtype="<f4").astype(np.float32)
    finally:
        _RUNS.done(audio_path)
    late = _frames_info(log) if video and not stopped and grey.shape is None else None
    if late is not None:
        grey.add(b"", late)  # the size was logged only at the end
    info = _describe(log)
    return _Decoded(info, status, grey.frames() if video else None, len(grey.pending), wave, log)


def check_local_file(path: Path) -> None:
    """MediaError unless ``path`` is an existing local file (a name like ``http://...`` or
    ``concat:a|b`` is not fetched or read through ffmpeg's protocols)."""
    if Path(path).exists():
        if not Path(path).is_file():  # a pipe would block ffmpeg until a writer comes, perhaps never
            raise MediaError(f"{path}: not a regular file (a folder, pipe or device); give a media file")
        return
    if _PROTOCOL.match(str(path)):
        raise MediaError(
            f"{path}: no such file; smop reads local files only, never a URL or an ffmpeg protocol "
            "(http:, concat:, ...): fetch the file first"
        )
    raise MediaError(f"{path}: no such file")


def read_media(
    path: Path,
    fps: float = VIDEO_FPS,
    sample_rate: int = SAMPLE_RATE,
    need: Sequence[str] = STREAMS,
    optional: Sequence[str] = (),
    stall_timeout: float = STALL_TIMEOUT,
) -> Tuple[StreamInfo, Optional[np.ndarray], Optional[np.ndarray]]:
    """Source description, (T, H, W) uint8 grey frames at ``fps`` and mono float32 audio at
    ``sample_rate``. A run that makes no progress for ``stall_timeout`` seconds is given up.

    Streams in ``need`` must be there (MediaError names the missing one); streams in ``optional``
    are decoded when present and None when absent; streams in neither are not decoded (None).
    Sources already at ``fps`` are decoded untouched in one run; the source rate is only known once
    ffmpeg has opened the file, so for others that run stops there and a second one decodes them
    through the fps filter.
    """
    check_local_file(path)
    unknown = set(need) | set(optional)
    if not unknown <= set(STREAMS) or not unknown:
        raise ValueError(f"streams must be a non-empty subset of {STREAMS}, got need={need} optional={optional}")
    wanted = [s for s in STREAMS if s in need or s in optional]
    # At another rate the first run ends as soon as ffmpeg has described the file: its frames would be thrown away.
    info, status, frames, partial, wave, log = _decode(
        path, wanted, None, sample_rate, lambda described: abs(described.fps - fps) >= 0.01, stall_timeout
    )
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
            info, status, frames, partial, wave, log = _decode(
                path, wanted, fps if refit else None, sample_rate, stall_timeout=stall_timeout
            )
    if info is None or status != 0:
        raise MediaError(f"{path}: decoding failed: {_last_error(log)}")
    info.damage = _damage(log)
    if "video" in wanted:
        if frames is None or frames.shape[0] == 0:
            raise MediaError(f"{path}: no decodable video frames")
        if partial:
            raise MediaError(f"{path}: truncated video stream")
    else:
        frames = None
    if "audio" in wanted:
        if wave.size == 0:
            raise MediaError(f"{path}: no decodable audio")
        if not np.isfinite(wave).all():  # a float file can hold them; a transcript of them would be invented
            raise MediaError(f"{path}: the audio holds NaN or infinite samples")
    else:
        wave = None
    return info, frames, wave


_DURATION = re.compile(r"^\[info\] +Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?),")


def header_seconds(path: Path, timeout: float = 10.0) -> Optional[float]:
    """The duration the file's header states, before anything is decoded (a service's cap on what
    it takes); None when it states none (a browser's MediaRecorder webm), or ffmpeg cannot open it
    (read_media then says why). ffmpeg opens the file and stops: it is given no output."""
    check_local_file(path)
    cmd = ["ffmpeg", *_LOG, "-nostdin", *LOCAL_ONLY, "-i", f"file:{Path(path).absolute()}"]
    try:
        run = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    except FileNotFoundError as e:
        raise MediaError("ffmpeg not found (install ffmpeg)") from e
    for line in run.stderr.decode("utf-8", "replace").splitlines():
        m = _DURATION.match(line)
        if m:
            return 3600 * int(m[1]) + 60 * int(m[2]) + float(m[3])
    return None
