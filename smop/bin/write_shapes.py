#!/usr/bin/env python3
"""Shape files and token statistics for training, without building any model.

    python -m smop.bin.write_shapes --train_config conf/train_dedr.yaml \
        --data_dir data/train data/valid --output_dir dump/shapes/train_dedr/train dump/shapes/train_dedr/valid

Writes ``frames_shape`` (25 Hz video frames per utterance: the batch sampler's length, the same
unit for every modality), ``text_shape`` (LLM tokens per transcript, with the LLM's own
tokenizer) and ``token_stats.txt`` for each data dir (several in one run: the tokenizer and the
libraries load once).
"""

import argparse
import logging
from pathlib import Path

import numpy as np
from humanfriendly import format_timespan

from smop.data.datadir import read_table, write_table
from smop.data.inputs import VIDEO_FPS
from smop.decoders.abs_decoder import TextEncoder
from smop.tasks.avsr import SmopAVSRTask
from smop.utils.io import atomic_write
from smop.utils.log import setup_logging

logger = logging.getLogger("write_shapes")


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", type=Path, nargs="+", required=True)
    p.add_argument("--train_config", type=Path, required=True)
    p.add_argument("--output_dir", type=Path, nargs="+", required=True, help="one per --data_dir")
    args = p.parse_args(cmd)
    if len(args.data_dir) != len(args.output_dir):
        p.error(f"{len(args.data_dir)} --data_dir but {len(args.output_dir)} --output_dir")
    setup_logging()
    train_args = SmopAVSRTask.get_parser().parse_args(["--config", str(args.train_config), "--output_dir", "unused"])
    text_encoder = SmopAVSRTask.build_text_encoder(train_args)
    for data_dir, output_dir in zip(args.data_dir, args.output_dir):
        write_shapes(data_dir, output_dir, text_encoder)


def write_shapes(data_dir: Path, output_dir: Path, text_encoder: TextEncoder) -> None:
    frames = dict(read_table(data_dir / "utt2num_frames"))
    text = dict(read_table(data_dir / "text"))
    if set(frames) != set(text):
        raise SystemExit(f"{data_dir}: utt2num_frames and text have different ids")
    ids = {u: text_encoder.encode(t) for u, t in text.items()}
    tokens = {u: len(i) for u, i in ids.items()}
    empty = sorted(u for u, n in tokens.items() if n == 0)
    if empty:
        raise SystemExit(f"{data_dir}: transcripts without tokens: {empty[:5]}")
    output_dir.mkdir(parents=True, exist_ok=True)
    write_table(output_dir / "frames_shape", frames)
    write_table(output_dir / "text_shape", {u: str(n) for u, n in tokens.items()})
    n_tok = np.array(list(tokens.values()))
    n_frm = np.array([int(v) for v in frames.values()])
    seconds = n_frm.sum() / VIDEO_FPS
    unk = text_encoder.unk_id
    n_unk = sum(i.count(unk) for i in ids.values()) if unk is not None else 0
    with atomic_write(output_dir / "token_stats.txt") as f:
        f.write(
            f"utterances {len(text)}\nduration {format_timespan(seconds)} ({seconds / 3600:.3f} h)\n"
            f"frames mean {n_frm.mean():.1f} max {n_frm.max()}\n"
            f"tokens total {n_tok.sum()} mean {n_tok.mean():.1f} max {n_tok.max()}\n"
            f"unknown tokens {n_unk}\n"
        )
    logger.info(f"{output_dir}: {len(text)} utterances, {format_timespan(seconds)}, {n_tok.sum()} tokens")


if __name__ == "__main__":
    main()
