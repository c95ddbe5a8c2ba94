#!/usr/bin/env python3
"""A web page that transcribes a video or audio file with a packed smop model (also installed as
``smop-demo``; needs the demo extra: ``tools/install.sh --extra demo``).

    smop-demo --model egs/mini_av/avsr_smop/exp/train_dedr/pack     # then open http://127.0.0.1:7860

Upload a video or an audio file, or record one with the webcam and microphone; choose the modality
the model reads (an audio-visual model also decodes audio only or video only; an elastic model offers
the modalities and rate pairs it was trained for); read the transcript, the segments of a long
recording, the mouth crops the model read, which projector experts this input used, the notes (video
blanked, no face, audio cut to the video) and the timings.

The model is loaded once; each file is read and decoded as ``smop-transcribe`` does it, with the
face found by dlib (the landmarks extra). Files larger than --max_mb or longer than --max_seconds,
unreadable files, files without a face for a lip-reading model and modalities the model lacks are
refused with the reason on the page. The server binds 127.0.0.1 unless --host says otherwise, runs
--concurrency requests at a time (reading overlaps, decoding takes turns) and queues up to
--queue_size more. Uploads live in a temporary folder of its own, swept every minute of files older
than 10 minutes and removed when the server stops; gradio's usage analytics are off.
"""

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

from smop.data.errors import DataError
from smop.utils.log import setup_logging

logger = logging.getLogger("demo")


def get_parser():
    p = argparse.ArgumentParser(
        prog="smop-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", required=True, help="a packed model: its folder, or a hub id in the local HF cache")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 serves other machines too")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--beam_size", type=int, help="default: the pack's decoding setting")
    p.add_argument("--max_mb", type=float, default=50.0, help="largest file taken (MB)")
    p.add_argument("--max_seconds", type=float, default=120.0, help="longest file taken (seconds)")
    p.add_argument(
        "--max_segment_seconds", type=float, help="longest segment a recording is cut into (as smop-transcribe's)"
    )
    p.add_argument("--concurrency", type=int, default=2, help="requests served at once")
    p.add_argument("--queue_size", type=int, default=16, help="requests waiting at most; more are turned away")
    p.add_argument("--log_level", default="WARNING", choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    return p


@contextlib.contextmanager
def app_folder() -> Iterator[Path]:
    """A temporary folder for gradio's uploads and results (GRADIO_TEMP_DIR), removed on the way
    out; gradio's analytics off. Set before gradio is imported: some of it reads them at import."""
    folder = Path(tempfile.mkdtemp(prefix="smop-demo-"))
    saved = {k: os.environ.get(k) for k in ("GRADIO_TEMP_DIR", "GRADIO_ANALYTICS_ENABLED")}
    os.environ.update(GRADIO_TEMP_DIR=str(folder), GRADIO_ANALYTICS_ENABLED="False")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_session(args, uploads: Path):
    """The model, loaded once, and the page's limits."""
    from smop.demo.session import DemoSession, Limits
    from smop.inference.speech2text import Speech2Text

    speech2text = Speech2Text.from_pretrained(args.model, device=args.device, beam_size=args.beam_size)
    return DemoSession(
        speech2text,
        Limits(args.max_mb, args.max_seconds),
        uploads=uploads,
        max_segment_seconds=args.max_segment_seconds,
        readers=args.concurrency,
    )


def launch(session, args, block: bool = True):
    """Queue and serve the page of ``session``; with ``block=False`` (tests) return the running
    gradio Blocks (``.local_url``; ``.close()`` stops it)."""
    from smop.demo.page import build

    model = Path(str(args.model))
    name = f"{model.parent.name}/{model.name}" if model.name == "pack" else str(args.model)  # exp/<config>/pack
    page = build(session, f"smop: {name} ({session.modality} model)", about=__doc__.split("\n\n")[2])
    page.queue(default_concurrency_limit=args.concurrency, max_size=args.queue_size)
    page.launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=int(args.max_mb * 1e6),
        prevent_thread_lock=not block,
        quiet=not block,
        footer_links=[],
        show_error=False,
    )
    return page


def main(cmd=None):
    parser = get_parser()
    args = parser.parse_args(cmd)
    for name in ("max_mb", "max_seconds", "concurrency", "queue_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    setup_logging(args.log_level)
    if args.log_level != "DEBUG":  # as smop-transcribe: no weight-loading bars or deprecation notices
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning)
    with app_folder() as uploads:
        try:
            import gradio  # noqa: F401
        except ImportError:
            sys.exit("smop-demo: needs gradio: tools/install.sh --extra demo (or pip install 'smop[demo]')")
        try:
            session = load_session(args, uploads)
        except (ValueError, DataError) as e:  # unusable options or model
            sys.exit(f"smop-demo: {e}")
        print(f"smop-demo: {args.model} ({session.modality}) on http://{args.host}:{args.port}", flush=True)
        previous = signal.signal(signal.SIGTERM, _interrupt)  # kill PID stops it as Ctrl-C does: folder removed
        try:
            launch(session, args, block=True)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
