#!/usr/bin/env python3
"""Transcribe media files with a packed smop model (also installed as ``smop-transcribe``).

    smop-transcribe --model exp/train_dedr/pack --landmarks 'landmarks/{parent}/{stem}.npy' a.mp4 b.mkv c.wav

Prints ``<file> <text>`` per file, in the order given, as its batch is decoded; ``--output_format
json`` writes scores, segments, timings and notes instead. ffmpeg decodes mp4, mkv, avi, wav, flac
and the rest; video is cropped around the mouth exactly as the model's training data was (the
pack's mouth_crop.yaml), from face landmarks that dlib detects or that --landmarks gives.

A recording longer than --max_segment_seconds (default 30 s, and never more than the model's audio
encoder takes) is cut into segments at pauses (found by --vad), and the transcripts of its segments are joined. A
file that cannot be used is named on stderr and the others still decode (the exit status is then
1). An audio-visual model decodes a file without video, or without a usable face, with the video
blanked as modality dropout blanks it in training, and says so; a segment whose audio is silent and
that has no video is not decoded (a NOTE says so). Names are read as local files only.
"""

import argparse
import concurrent.futures
import json
import logging
import os
import signal
import sys
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

START = time.perf_counter()  # as a command, latencies count from its start (this module's import)

from smop.data.errors import DataError  # noqa: E402 (after START: these imports are part of the start-up)
from smop.data.inputs import MODALITIES  # noqa: E402
from smop.data.media import STALL_TIMEOUT, stop_all  # noqa: E402
from smop.inference.media_inputs import LandmarkFiles, MediaInputs, read_inputs  # noqa: E402
from smop.inference.segments import DEFAULT_VAD, VADS, check_vad  # noqa: E402
from smop.utils.log import setup_logging

logger = logging.getLogger("transcribe")


def get_parser():
    p = argparse.ArgumentParser(
        prog="smop-transcribe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("files", nargs="+", type=Path, help="media files (anything ffmpeg reads)")
    p.add_argument("--model", required=True, help="a packed model: its folder, or a hub id in the local HF cache")
    p.add_argument(
        "--landmarks",
        help="face landmarks, (T, 68, 2) .npy per video: one file (for one input), a folder "
        "of <stem>.npy, or a pattern with {stem} {name} {parent} {dir}",
    )
    p.add_argument("--output_format", choices=("text", "json"), default="text")
    p.add_argument("--output", type=Path, help="write the transcripts here instead of stdout")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--batch_size", type=int, help="files per batch (default: the pack's decoding setting)")
    p.add_argument("--beam_size", type=int, help="default: the pack's decoding setting")
    p.add_argument("--modality", help="an elastic model's modality to decode: audio, video or audiovisual")
    p.add_argument("--audio_rate", type=int, help="an elastic model's audio compression rate (default: its first)")
    p.add_argument("--video_rate", type=int, help="an elastic model's video compression rate (default: its first)")
    p.add_argument(
        "--max_segment_seconds",
        type=float,
        help="longest segment a recording is cut into (default 30 s, less if the audio encoder takes less)",
    )
    p.add_argument(
        "--vad",
        choices=VADS,
        default=DEFAULT_VAD,
        help="the rule that finds the pauses a long recording is cut at: energy (the level of each 40 ms), "
        "or silero (silero-vad's speech probability; needs the vad extra: pip install 'smop[vad]')",
    )
    p.add_argument("--num_workers", type=int, default=2, help="threads reading files while the model decodes")
    p.add_argument(
        "--quantization",
        help="decode with the LLM quantized otherwise than in training: '{bits: 4}', '{bits: 8}' or none "
        "(unquantized); default: as trained",
    )
    p.add_argument(
        "--read_timeout",
        type=float,
        default=STALL_TIMEOUT,
        help="seconds the decoding of a file may go without progress before that file is given up (a stalled input)",
    )
    p.add_argument("--log_level", default="WARNING", choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    return p


def read_ahead(files: List[Path], read, workers: int, ahead: int) -> Iterator[Tuple[Path, object, float]]:
    """(file, inputs or the exception, seconds) in order, reading up to ``ahead`` files in advance."""

    def timed(path):
        t = time.perf_counter()
        try:
            return read(path), time.perf_counter() - t
        except (DataError, OSError, ValueError, RuntimeError) as e:  # this file's error; the others go on
            return e, time.perf_counter() - t

    pool = concurrent.futures.ThreadPoolExecutor(max(1, workers))
    try:
        pending = deque()
        for path in files:
            pending.append((path, pool.submit(timed, path)))
            if len(pending) > ahead:
                path0, future = pending.popleft()
                yield (path0, *future.result())
        while pending:
            path0, future = pending.popleft()
            yield (path0, *future.result())
    except BaseException:  # an interrupt, or the caller stopped: the reads under way are not waited for
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def batches(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Report:
    """Writes each file's result as it comes, and the JSON document at the end."""

    def __init__(self, fmt: str, out, progress, start: float):
        self.fmt, self.out, self.progress, self.start = fmt, out, progress, start
        self.files: List[dict] = []
        self.first: Optional[float] = None

    def note(self, text: str) -> None:
        self.progress.write(f"NOTE {text}", file=sys.stderr)

    def error(self, path: Path, error: Exception, read_seconds: float) -> None:
        self.progress.write(f"ERROR {error}" if str(path) in str(error) else f"ERROR {path}: {error}", file=sys.stderr)
        self.files.append(
            {
                "file": str(path),
                "error": f"{type(error).__name__}: {error}",
                "seconds": {"read": round(read_seconds, 3)},
            }
        )
        self.progress.update(1)

    def result(self, path: Path, inputs: MediaInputs, transcript, read_seconds: float, decode_seconds: float) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.start
        if self.fmt == "text":
            self.out.write(f"{path} {transcript.text}\n".replace(" \n", "\n"))
            self.out.flush()
        self.files.append(file_record(path, inputs, transcript, read_seconds, decode_seconds))
        self.progress.update(1)


def file_record(path: Path, inputs: MediaInputs, transcript, read_seconds: float, decode_seconds: float) -> dict:
    """A decoded file as ``--output_format json`` gives it (and smop-demo shows it): text, score,
    what was blanked, notes, duration, segments (start, end, text, score) and timings."""
    segments = [
        {"start": round(a, 2), "end": round(b, 2), "text": h.text, "score": round(h.score, 4)}
        for a, b, h in transcript.segments
    ]
    return {
        "file": str(path),
        "text": transcript.text,
        "score": round(transcript.score, 4),
        "blanked": list(transcript.blanked),
        "notes": [*inputs.notes, *transcript.notes],
        "duration": round(inputs.seconds, 3),
        "segments": segments,
        "seconds": {"read": round(read_seconds, 3), "decode": round(decode_seconds, 3)},
    }


def transcribe(args, out, start: float) -> int:
    """Decode every file; the number of files that failed. Latencies count from ``start``."""
    from tqdm import tqdm

    from smop.decoders.quantization import cli_value
    from smop.inference.speech2text import Speech2Text

    marks = LandmarkFiles(args.landmarks, len(args.files))
    speech2text = Speech2Text.from_pretrained(
        args.model,
        device=args.device,
        quantization=None if args.quantization is None else cli_value(args.quantization),
        batch_size=args.batch_size,
        beam_size=args.beam_size,
        vad=args.vad,
        modality=args.modality,
        audio_rate=args.audio_rate,
        video_rate=args.video_rate,
    )
    loaded = time.perf_counter() - start
    modalities = MODALITIES[speech2text.modality]  # the inputs the chosen modality reads
    size = speech2text.settings.batch_size
    progress = tqdm(total=len(args.files), disable=len(args.files) < 2, unit="file", file=sys.stderr, desc="transcribe")
    report = Report(args.output_format, out, progress, start)

    def read(path: Path) -> MediaInputs:
        return read_inputs(path, modalities, speech2text.mouth_crop, marks.path_for(path), args.read_timeout)

    for batch in batches(read_ahead(args.files, read, args.num_workers, 2 * size), size):
        good = []
        for path, inputs, seconds in batch:
            if isinstance(inputs, Exception):
                report.error(path, inputs, seconds)
            else:
                good.append((path, inputs, seconds))
                for note in inputs.notes:
                    report.note(note)
        decode_batch(speech2text, good, report, args.max_segment_seconds)
    progress.close()
    failed = sum("error" in f for f in report.files)
    if args.output_format == "json":
        done = [f for f in report.files if "error" not in f]
        audio = sum(f["duration"] for f in done)
        total = time.perf_counter() - start
        json.dump(
            {
                "model": str(args.model),
                "settings": speech2text.settings.to_dict(),
                "vad": speech2text.vad,
                "files": report.files,
                "summary": {
                    "files": len(args.files),
                    "decoded": len(done),
                    "failed": failed,
                    "seconds_to_model_loaded": round(loaded, 3),
                    "seconds_to_first_transcript": None if report.first is None else round(report.first, 3),
                    "seconds_total": round(total, 3),
                    "media_seconds": round(audio, 3),
                },
            },
            out,
            indent=2,
        )
        out.write("\n")
    return failed


def decode_batch(speech2text, good, report: Report, max_segment_seconds: Optional[float]) -> None:
    """Decode the files of one batch; a file the model refuses is named, the others still decode."""
    if not good:
        return
    t = time.perf_counter()
    try:
        transcripts = speech2text.transcribe_all(
            [i.speech for _, i, _ in good],
            [i.video for _, i, _ in good],
            max_segment_seconds,
            ids=[str(p) for p, _, _ in good],
        )
    except (DataError, ValueError, RuntimeError) as e:  # RuntimeError: from the model, on this input
        if len(good) == 1:
            report.error(good[0][0], e, good[0][2])
        else:
            for one in good:  # find the file at fault
                decode_batch(speech2text, [one], report, max_segment_seconds)
        return
    share = (time.perf_counter() - t) / len(good)
    for (path, inputs, seconds), transcript in zip(good, transcripts):
        for note in transcript.notes:
            report.note(note)
        report.result(path, inputs, transcript, seconds, share)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the way out cleans up as Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame):
    raise Terminated(signum)


def output_refusal(output: Path, files: List[Path]) -> Optional[str]:
    """Why ``--output`` cannot be written, checked before anything is decoded: a folder (the
    transcripts would be lost at the end) or one of the inputs (it would be overwritten)."""
    if output.is_dir():
        return f"--output {output} is a folder; name the file to write the transcripts to"
    for f in files:
        if f.resolve() == output.resolve() or (output.exists() and f.exists() and os.path.samefile(f, output)):
            return f"--output {output} is the input {f}; writing the transcripts there would overwrite it"
    return None


def main(cmd=None):
    start = START if cmd is None else time.perf_counter()
    parser = get_parser()
    args = parser.parse_args(cmd)
    if args.max_segment_seconds is not None and args.max_segment_seconds <= 0:
        parser.error(f"--max_segment_seconds must be positive, got {args.max_segment_seconds}")
    if args.read_timeout <= 0:
        parser.error(f"--read_timeout must be positive, got {args.read_timeout}")
    try:
        check_vad(args.vad)  # before the model loads
    except ImportError as e:
        sys.exit(f"smop-transcribe: --vad {args.vad}: {e}")
    if args.output is not None:
        refused = output_refusal(args.output, args.files)
        if refused:
            sys.exit(f"smop-transcribe: {refused}")
    setup_logging(args.log_level)
    if args.log_level != "DEBUG":  # a command for users: no weight-loading bars or deprecation notices
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.output is not None:
            from smop.utils.io import atomic_write

            with atomic_write(args.output) as out:  # removes its temporary file on the way out
                failed = transcribe(args, out, start)
        else:
            failed = transcribe(args, sys.stdout, start)
    except (ValueError, DataError) as e:  # unusable options or model: nothing was decoded
        sys.exit(f"smop-transcribe: {e}")
    except (KeyboardInterrupt, Terminated) as e:
        # The reading threads are not waited for (face detection of a long file takes minutes):
        # their ffmpeg runs are killed, their temporary files removed, and the program ends now.
        stop_all()
        signum = e.signum if isinstance(e, Terminated) else signal.SIGINT
        print(f"smop-transcribe: stopped by {signal.Signals(signum).name}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(128 + signum)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if failed:
        print(f"smop-transcribe: {failed} of {len(args.files)} files failed (named above)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
