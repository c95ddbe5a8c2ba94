#!/usr/bin/env python3
"""Convert auto_avsr's precomputed LRS3 landmarks (one pickle per video: a list with a (68, 2)
array or None per frame) into smop's format: one (T, 68, 2) float32 .npy per video, NaN where
no face was found.

    python -m smop.bin.convert_landmarks --src LRS3_landmarks --dst lrs3_landmarks_npy

Like the AV-HuBERT conversion, this is an explicit step on files you name: the unpickler only
builds numpy arrays, lists and None, and refuses anything else, so no code from a file can run.
"""

import argparse
import logging
import pickle
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from smop.utils.io import atomic_write
from smop.utils.log import setup_logging

logger = logging.getLogger("convert_landmarks")

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("builtins", "list"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a landmark file")


def convert(src: Path) -> np.ndarray:
    with open(src, "rb") as f:
        frames = _ArrayUnpickler(f).load()
    if not isinstance(frames, list):
        raise ValueError(f"{src}: expected a list of per-frame landmarks, got {type(frames).__name__}")
    out = np.full((len(frames), 68, 2), np.nan, dtype=np.float32)
    for t, marks in enumerate(frames):
        if marks is None:
            continue
        marks = np.asarray(marks, dtype=np.float32)
        if marks.shape != (68, 2):
            raise ValueError(f"{src}: frame {t} has landmarks of shape {marks.shape}, expected (68, 2)")
        out[t] = marks
    return out


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True, help="directory tree of <id>.pkl files")
    p.add_argument("--dst", type=Path, required=True, help="output tree of <id>.npy files (same layout)")
    args = p.parse_args(cmd)
    setup_logging()
    files = sorted(args.src.rglob("*.pkl"))
    if not files:
        sys.exit(f"no .pkl files under {args.src}")
    failed = []
    for src in tqdm(files, desc="landmarks", unit="file", file=sys.stderr, mininterval=5):
        dst = args.dst / src.relative_to(args.src).with_suffix(".npy")
        try:
            marks = convert(src)
        except (pickle.UnpicklingError, ValueError, EOFError) as e:
            failed.append((src, str(e)))
            continue
        with atomic_write(dst, "wb") as f:
            np.save(f, marks)
    for src, err in failed[:20]:
        logger.warning(f"skipped {src}: {err}")
    logger.info(f"converted {len(files) - len(failed)} of {len(files)} files into {args.dst}; {len(failed)} skipped")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
