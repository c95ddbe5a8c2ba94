"""What smop-demo's page does, without the page: an uploaded file (gradio's temporary copy) checked
against the limits, read and decoded through smop-transcribe's path (``read_inputs``, then
``Speech2Text.transcribe_all``, then ``file_record``), and what the page shows of it.

Every refusal and every error is a ``Result`` with a one-line ``error``: the server keeps serving.
Messages name the upload by its file name, never by the server's path. Files are read in a pool of
``readers`` threads (each keeps its own dlib detector, about 100 MB: gradio's own threads come and
go, so reading there would load one per thread), and decoded one at a time (``lock``): torch
already uses the cores, and a model's decoding holds its activations only once.

An elastic model (issue 21) offers the modalities and rate pairs it was trained for; a request's cell
is decoded by a copy of the Speech2Text with that cell set (``Speech2Text.at``), the model not reloaded.
"""

import concurrent.futures
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from smop.bin.transcribe import file_record
from smop.data.errors import DataError
from smop.data.inputs import MODALITIES
from smop.data.media import STALL_TIMEOUT, header_seconds
from smop.experiment import Usage
from smop.inference.media_inputs import LandmarksRequired, read_inputs
from smop.models.elastic import GridError, grid_cells, pair_label, tokens_per_second

logger = logging.getLogger(__name__)

# The page's modality choices and what each reads; an audio-visual model offers all three.
AUDIO_VISUAL, AUDIO_ONLY, VIDEO_ONLY = "audio-visual", "audio only", "video only (lip reading)"
# The modality an elastic model decodes for each choice (Speech2Text's ``modality``).
MODALITY = {AUDIO_VISUAL: "audiovisual", AUDIO_ONLY: "audio", VIDEO_ONLY: "video"}
MODES: Dict[str, Tuple[str, ...]] = {mode: MODALITIES[modality] for mode, modality in MODALITY.items()}
RATE = re.compile(r"\b(audio|video) (\d+)\b")  # a rate choice's rates, as ``rate_label`` writes them
READER_THREADS = "smop-demo-read"
STRIP_FRAMES = 8  # mouth crops sampled for the strip
STRIP_SIDE = 88  # each shown at 88x88 (LRS3's crop; the mini models read smaller ones, scaled up)
STRIP_GAP = 4


class Refused(Exception):
    """An input the demo does not take, with the reason shown on the page."""


@dataclass(frozen=True)
class Limits:
    """What one request may bring: the file's size and its duration (the header's, else the decoded one)."""

    max_mb: float = 50.0
    max_seconds: float = 120.0

    def __post_init__(self):
        if self.max_mb <= 0 or self.max_seconds <= 0:
            raise ValueError(f"max_mb and max_seconds must be positive, got {self.max_mb} and {self.max_seconds}")


@dataclass
class Result:
    """One request's outcome: the transcript and what goes with it, or ``error``."""

    name: str
    mode: str = ""
    cell: str = ""  # what decoded it: the modality and rate pair, e.g. "audio at audio 8 (6.25 tokens/s)"
    text: str = ""
    error: str = ""
    notes: List[str] = field(default_factory=list)
    segments: List[dict] = field(default_factory=list)  # start, end, text, score
    duration: float = 0.0
    crops: Optional[np.ndarray] = None  # (88, W) uint8 strip of sampled mouth crops
    usage: Usage = field(default_factory=dict)  # modality -> top<r> -> tokens per expert
    seconds: Dict[str, float] = field(default_factory=dict)  # read, wait, decode, total

    def rows(self) -> List[list]:
        """The segments table: start (s), end (s), text, score."""
        return [[s["start"], s["end"], s["text"], s["score"]] for s in self.segments]

    def timings(self) -> str:
        parts = [f"{k} {v:.2f} s" for k, v in self.seconds.items()]
        media = f"{self.duration:.2f} s of media; " if self.duration else ""
        return media + ", ".join(parts)


def rate_label(pair: Dict[str, int]) -> str:
    """A rate pair as the page lists it: ``audio 4 / video 2 (12.5 + 12.5 tokens/s)``."""
    tokens = tokens_per_second(pair)
    return f"{pair_label(pair)} ({' + '.join(f'{t:g}' for t in tokens.values())} tokens/s)"


def crop_strip(video: np.ndarray, crop_size: int, frames: int = STRIP_FRAMES) -> np.ndarray:
    """``frames`` evenly sampled mouth crops of ``video`` (T, S, S), each centre-cropped to the
    ``crop_size`` the model reads (its preprocessing's crop) and shown at 88x88, side by side."""
    import cv2

    t, h, w = video.shape
    top, left = max(0, (h - crop_size) // 2), max(0, (w - crop_size) // 2)
    picks = np.unique(np.linspace(0, t - 1, min(frames, t)).round().astype(int))
    tiles = []
    for i in picks:
        tile = video[i, top : top + crop_size, left : left + crop_size]
        tiles.append(cv2.resize(tile, (STRIP_SIDE, STRIP_SIDE), interpolation=cv2.INTER_NEAREST))
        tiles.append(np.full((STRIP_SIDE, STRIP_GAP), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def usage_image(usage: Usage, title: str) -> np.ndarray:
    """The expert-usage bar chart (``plot_expert_usage.usage_figure``) as an (H, W, 3) uint8 image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from smop.bin.plot_expert_usage import usage_figure

    fig = usage_figure(usage, title)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class DemoSession:
    """A loaded model and the page's limits; ``transcribe`` serves one request.

    ``uploads``: the folder gradio stores uploads in; a path outside it is refused (the page takes
    no path from the browser but gradio's own copy of the upload). ``readers``: files read at once.
    """

    def __init__(
        self,
        speech2text,
        limits: Limits = Limits(),
        uploads: Optional[Path] = None,
        read_timeout: float = STALL_TIMEOUT,
        max_segment_seconds: Optional[float] = None,
        readers: int = 2,
    ):
        self.speech2text = speech2text
        self.limits = limits
        self.uploads = None if uploads is None else Path(uploads).resolve()
        self.read_timeout = read_timeout
        self.max_segment_seconds = max_segment_seconds
        self.lock = threading.Lock()
        self.readers = concurrent.futures.ThreadPoolExecutor(readers, thread_name_prefix=READER_THREADS)
        self.modality = speech2text.modality

    @property
    def elastic(self) -> bool:
        """Whether the model was trained on modalities other than its inputs' (several, or another
        one): each choice is then decoded as that modality (Speech2Text's ``modality``); otherwise an
        audio-visual model offers one input alone by blanking the other, as modality dropout does in
        training."""
        model = self.speech2text.model
        return tuple(model.tasks) != (model.modality,)

    @property
    def modes(self) -> List[str]:
        """The modality choices this model offers (the first is the default)."""
        if self.elastic:
            tasks = self.speech2text.model.tasks
            default = self.speech2text.modality
            return [mode for mode, m in MODALITY.items() if m == default] + [
                mode for mode, m in MODALITY.items() if m in tasks and m != default
            ]
        have = set(self.speech2text.model.modalities)
        return [mode for mode, reads in MODES.items() if set(reads) <= have]

    def rates(self, mode: str) -> List[str]:
        """The rate-pair choices of ``mode`` (the first is the default), or none for a model trained
        at one rate pair."""
        model = self.speech2text.model
        if len(model.rate_pairs) == 1:
            return []
        modality = MODALITY[mode] if self.elastic else self.speech2text.modality
        default = rate_label(self.speech2text.at(modality=modality).rates)
        labels = [rate_label(pair) for m, pair in grid_cells(model.grid()) if m == modality]
        return [default] + [label for label in labels if label != default]

    def _decoder(self, mode: str, rate: Optional[str]):
        """The Speech2Text of the chosen cell (the loaded model's, settings changed: nothing reloads)."""
        cell = {"modality": MODALITY[mode]} if self.elastic else {}
        if rate:
            pair = {m: int(r) for m, r in RATE.findall(rate)}
            if not pair:
                raise Refused(f"rate {rate!r}: choose one of {', '.join(self.rates(mode)) or 'none (one rate pair)'}")
            cell.update(audio_rate=pair.get("audio"), video_rate=pair.get("video"))
        try:
            return self.speech2text.at(**cell) if cell else self.speech2text
        except GridError as e:
            raise Refused(str(e)) from None

    # ---------------------------------------------------------------------------------- checks
    def _upload(self, upload: Optional[str]) -> Path:
        if not upload:
            raise Refused("no file: upload a video or audio file, or record one, then press Transcribe")
        path = Path(upload)
        if self.uploads is not None and not path.resolve().is_relative_to(self.uploads):
            raise Refused(f"{path.name}: not a file uploaded to this page")
        if not path.is_file():
            raise Refused(f"{path.name}: the upload is gone (uploads are kept 10 minutes); upload it again")
        mb = path.stat().st_size / 1e6
        if mb > self.limits.max_mb:
            raise Refused(f"{path.name}: {mb:.1f} MB; this demo takes files up to {self.limits.max_mb:g} MB")
        return path

    def _reads(self, mode: str) -> Tuple[str, ...]:
        if mode not in self.modes:
            raise Refused(
                f"this {self.modality} model has no {mode!r} mode "
                f"(it reads {' and '.join(self.speech2text.model.modalities)}); "
                f"choose {' or '.join(repr(m) for m in self.modes)}"
            )
        return MODES[mode]

    def _check_seconds(self, name: str, seconds: Optional[float]) -> None:
        if seconds is not None and seconds > self.limits.max_seconds:
            raise Refused(f"{name}: {seconds:.1f} s long; this demo takes up to {self.limits.max_seconds:g} s")

    @staticmethod
    def _public(text: str, path: Path) -> str:
        """``text`` with the upload named by its file name, not by its path on the server."""
        return text.replace(str(path.resolve()), path.name).replace(str(path), path.name)

    def _message(self, error: Exception, path: Path, reads: Sequence[str]) -> str:
        """A reading or decoding error as the page shows it."""
        text = self._public(str(error), path)
        if isinstance(error, LandmarksRequired):
            return (
                f"{path.name}: no face detector here to find the mouth (dlib: tools/install.sh --extra landmarks); "
                f"choose {AUDIO_ONLY!r} if the model reads audio"
            )
        for m in reads:
            if text.endswith(f"no {m} stream"):
                return f"{text}: the chosen mode reads {m}; give a file with {m}" + (
                    f", or choose another mode ({', '.join(x for x in self.modes if m not in MODES[x])})"
                    if any(m not in MODES[x] for x in self.modes)
                    else ""
                )
        return text

    # ---------------------------------------------------------------------------------- a request
    def transcribe(self, upload: Optional[str], mode: str, rate: Optional[str] = None) -> Result:
        """One request: the upload's transcript, segments, mouth crops, expert usage, notes and
        timings; or its ``error``. ``rate``: one of ``rates(mode)`` (None: the model's default)."""
        start = time.perf_counter()
        result = Result(Path(upload).name if upload else "", mode)
        try:
            path = self._upload(upload)
            reads = self._reads(mode)
            speech2text = self._decoder(mode, rate)
            self._check_seconds(path.name, header_seconds(path))
        except Refused as e:
            result.error = str(e)
            return result
        except DataError as e:  # header_seconds: not a local regular file
            result.error = self._message(e, path, ())
            return result
        usage: Usage = {}
        try:
            crop = self.speech2text.mouth_crop
            inputs = self.readers.submit(read_inputs, path, reads, crop, None, self.read_timeout).result()
            read = time.perf_counter() - start
            self._check_seconds(path.name, inputs.seconds)  # files whose header gives no duration
            with self.lock:
                begun = time.perf_counter()
                (transcript,) = speech2text.transcribe_all(
                    [inputs.speech], [inputs.video], self.max_segment_seconds, ids=[path.name], usage=usage
                )
                decode = time.perf_counter() - begun
        except Refused as e:
            result.error = str(e)
            return result
        except (DataError, OSError, ValueError, RuntimeError) as e:  # this file's fault; the server goes on
            logger.info(f"{path.name}: {type(e).__name__}: {e}")
            result.error = self._message(e, path, reads)
            return result
        record = file_record(Path(path.name), inputs, transcript, read, decode)
        result.cell = f"{speech2text.modality} at {rate_label(speech2text.rates)}"
        result.text = record["text"]
        result.notes = [self._public(n, path) for n in record["notes"]]
        blanked = set() if self.elastic else set(self.speech2text.model.modalities) - set(reads)
        for m in sorted(blanked):
            result.notes.append(
                f"{mode}: decoded with the {m} blanked by choice, as modality dropout blanks it in training"
            )
        result.segments = record["segments"]
        result.duration = record["duration"]
        if inputs.video is not None:
            result.crops = crop_strip(inputs.video, self.speech2text.preprocess.crop_size)
        result.usage = usage
        result.seconds = {
            "read": round(read, 3),
            "wait": round(begun - start - read, 3),
            "decode": round(decode, 3),
            "total": round(time.perf_counter() - start, 3),
        }
        return result
