#!/usr/bin/env python3
"""Detect facial landmarks in an LRS3-layout corpus with dlib: the files prepare_lrs3 reads.

    python -m smop.bin.detect_landmarks --corpus_root $LRS3 --subsets test,trainval \
        --landmarks_root data/local/landmarks --nj 8 [--detector hog|cnn] [--detect_every 5]

Writes <landmarks_root>/<subset>/<speaker>/<id>.npy, (T, 68, 2) float32 pixel coordinates at
25 fps, NaN rows where no face was found (the largest face, tracked between whole-frame searches
of every --detect_every-th frame), and per subset
<landmarks_root>/<subset>/detect_report.txt naming every video without any face (its track is
all NaN, so prepare_lrs3 skips it with that reason) and every unreadable one (no file written).
Re-runnable: finished files are kept, new ones are written atomically. Exits non-zero when more
than --max_skip_share of the videos have no usable track. Needs the landmarks extra
(tools/install.sh --extra landmarks); dlib's 68-point model is for non-commercial research use.
"""

import argparse
import contextlib
import logging
import multiprocessing
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from smop.data.errors import DataError
from smop.data.face_landmarks import DETECT_EVERY, DETECTORS, UPSAMPLE, FaceLandmarkDetector
from smop.data.inputs import VIDEO_FPS
from smop.data.landmarks import LandmarkError, load_landmarks
from smop.data.lrs3.prepare import Job, find_jobs
from smop.data.media import read_media
from smop.utils.io import atomic_write
from smop.utils.log import setup_logging

logger = logging.getLogger("detect_landmarks")
REPORT = "detect_report.txt"


@dataclass
class Outcome:
    job: Job
    frames: int = 0
    faceless: int = 0  # frames without a face
    kept: bool = False  # the file was there from an earlier run
    error: Optional[str] = None  # why no file was written

    @property
    def no_face(self) -> bool:
        return self.error is None and self.frames > 0 and self.faceless == self.frames


def _load_kept(path: Path) -> np.ndarray:
    try:
        return load_landmarks(str(path))
    except (ValueError, EOFError) as e:  # LandmarkError, or not an npy file
        raise LandmarkError(f"{path}: unusable file from an earlier run ({e}); remove it to detect again") from e


def detect_file(job: Job, detector: FaceLandmarkDetector) -> Outcome:
    """Landmarks of one video into ``job.landmarks`` (kept if already there)."""
    out = Outcome(job)
    try:
        if job.landmarks.exists():
            marks = _load_kept(job.landmarks)
            out.kept = True
        else:
            _, frames, _ = read_media(job.video, VIDEO_FPS, need=("video",))
            marks = detector(frames)
            with atomic_write(job.landmarks, "wb") as f:
                np.save(f, marks)
        out.frames = marks.shape[0]
        out.faceless = int(np.isnan(marks).any(axis=(1, 2)).sum())
    except (DataError, OSError) as e:  # bad data is named in the report; anything else is a bug
        out.error = f"{type(e).__name__}: {e}"
    return out


_detector: Optional[FaceLandmarkDetector] = None  # of this process and its forked workers


def _detect_job(job: Job) -> Outcome:
    return detect_file(job, _detector)


def write_report(path: Path, outcomes) -> int:
    """The report of one subset; returns how many videos have no usable track."""
    frames = sum(o.frames for o in outcomes)
    faceless = sum(o.faceless for o in outcomes)
    no_face = [o for o in outcomes if o.no_face]
    failed = [o for o in outcomes if o.error]
    reasons = Counter(o.error.split(":")[0] for o in failed)
    with atomic_write(path) as f:
        f.write(f"videos: {len(outcomes)}\n")
        f.write(f"with a face: {len(outcomes) - len(no_face) - len(failed)}\n")
        f.write(f"no face in any frame: {len(no_face)}\n")
        f.write(f"unreadable: {len(failed)}\n")
        for reason, count in reasons.most_common():
            f.write(f"  {reason}: {count}\n")
        f.write(f"kept from an earlier run: {sum(o.kept for o in outcomes)}\n")
        f.write(f"frames: {frames}, without a face: {faceless} ({100 * faceless / max(frames, 1):.2f} %)\n")
        for o in no_face:
            f.write(f"NOFACE {o.job.video}\tno face in any of its {o.frames} frames\n")
        for o in failed:
            f.write(f"SKIP {o.job.video}\t{o.error}\n")
    return len(no_face) + len(failed)


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus_root", type=Path, required=True, help="<subset>/<speaker>/<id>.mp4")
    p.add_argument("--subsets", required=True, help="comma-separated: pretrain,trainval,test")
    p.add_argument("--landmarks_root", type=Path, required=True, help="output: <subset>/<speaker>/<id>.npy")
    p.add_argument(
        "--detector", choices=DETECTORS, default=DETECTORS[0], help="HOG (fast) or CNN (two orders slower on CPU)"
    )
    p.add_argument(
        "--upsample", type=int, default=UPSAMPLE, help="times the detector doubles the frame (1 finds faces >= 40 px)"
    )
    p.add_argument(
        "--detect_every",
        type=int,
        default=DETECT_EVERY,
        help="search the whole frame on every k-th frame and track the face in between (1: every frame, "
        "as AV-HuBERT's preparation)",
    )
    p.add_argument("--nj", type=int, default=1)
    p.add_argument(
        "--max_skip_share",
        type=float,
        default=0.01,
        help="fail when more than this share of the videos has no face at all or cannot be read",
    )
    return p


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    setup_logging()
    subsets = args.subsets.split(",")
    jobs = find_jobs(args.corpus_root, subsets, args.landmarks_root, None)
    if not jobs:
        raise SystemExit(f"no videos found under {args.corpus_root} for subsets {args.subsets}")
    todo = sum(not j.landmarks.exists() for j in jobs)
    logger.info(
        f"{len(jobs)} videos, {len(jobs) - todo} done before; detecting with dlib {args.detector} on {args.nj} jobs"
    )
    # Built once, before the workers fork: they inherit it (a detector does not pickle cheaply), and
    # a missing dlib fails here, with the install hint.
    global _detector
    _detector = FaceLandmarkDetector(args.detector, upsample=args.upsample, detect_every=args.detect_every)
    outcomes = defaultdict(list)
    with multiprocessing.get_context("fork").Pool(args.nj) if args.nj > 1 else contextlib.nullcontext() as pool:
        results = pool.imap_unordered(_detect_job, jobs) if pool else map(_detect_job, jobs)
        for o in tqdm(results, total=len(jobs), desc="landmarks", unit="video", file=sys.stderr, mininterval=5):
            outcomes[o.job.video.relative_to(args.corpus_root).parts[0]].append(o)
    bad = 0
    for subset in subsets:
        done = sorted(outcomes[subset], key=lambda o: str(o.job.video))
        report = args.landmarks_root / subset / REPORT
        n = write_report(report, done)
        bad += n
        logger.info(f"{subset}: {len(done) - n} of {len(done)} videos with landmarks; see {report}")
        for o in [o for o in done if o.error or o.no_face][:10]:
            logger.warning(f"{o.job.video}: {o.error or 'no face in any frame'}")
    if bad > args.max_skip_share * len(jobs):
        logger.error(f"{bad} of {len(jobs)} videos have no landmarks (limit {100 * args.max_skip_share:.2f} %)")
        sys.exit(1)


if __name__ == "__main__":
    main()
