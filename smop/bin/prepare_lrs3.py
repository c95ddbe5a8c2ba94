#!/usr/bin/env python3
"""Prepare a Kaldi data dir from an LRS3-layout corpus (also the mini audio-visual corpus).

    python -m smop.bin.prepare_lrs3 --corpus_root $LRS3 --landmarks_root $LRS3_LANDMARKS \
        --mean_face $MEAN_FACE --subsets trainval --exclude_list lrs3-valid.id \
        --output_dir data/train --media_dir dump/media/train --nj 8

Writes <output_dir>/{wav.scp,video.scp,text,utt2spk,spk2utt,utt2num_frames},
<output_dir>/prep_report.txt listing every skipped file with its reason, and
<output_dir>/mouth_crop.yaml with the settings the mouth crops were made with. Exits non-zero when
more than --max_skip_share of the videos are skipped. Re-runnable: outputs are replaced atomically.
"""

import argparse
import functools
import logging
import multiprocessing
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from smop.data.datadir import TABLES, validate_data_dir, write_data_dir
from smop.data.errors import DataError
from smop.data.inputs import INPUTS
from smop.data.lrs3.prepare import IdListError, find_jobs, process
from smop.data.mouth_roi import CROP_SETTINGS, ROI_SIZE, SMOOTH_WINDOW, MouthCropSettings
from smop.utils.io import atomic_write
from smop.utils.log import setup_logging

logger = logging.getLogger("prepare_lrs3")


def read_id_list(path):
    """``<speaker>/<video>`` per line (AV-HuBERT's lrs3-valid.id style; a ``<subset>/`` prefix is dropped)."""
    ids = set()
    for line in Path(path).read_text(encoding="utf-8").split():
        parts = line.strip().split("/")
        ids.add("/".join(parts[-2:]))
    return ids


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus_root", type=Path, required=True)
    p.add_argument("--landmarks_root", type=Path, required=True)
    p.add_argument("--subsets", required=True, help="comma-separated: pretrain,trainval,test")
    p.add_argument("--output_dir", type=Path, required=True)
    p.add_argument("--media_dir", type=Path, required=True, help="where the wav and npy files go")
    p.add_argument("--include_list", type=Path, help="keep only these <speaker>/<video> ids")
    p.add_argument("--exclude_list", type=Path, help="drop these <speaker>/<video> ids")
    p.add_argument("--max_seconds", type=float, default=16.0, help="cut pretrain clips longer than this")
    p.add_argument(
        "--roi_size", type=int, default=ROI_SIZE, help="side of the square mouth crop, in reference-face pixels"
    )
    p.add_argument("--roi_resize", type=int, help="resize the crops to this side (small models on CPUs)")
    p.add_argument(
        "--mean_face",
        type=Path,
        required=True,
        help="reference face of the mouth crops, (68, 2) landmarks .npy: for LRS3 the official "
        "20words_mean_face.npy (auto_avsr's preparation/detectors/retinaface/)",
    )
    p.add_argument("--smooth_window", type=int, default=SMOOTH_WINDOW, help="landmark smoothing window, frames")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--max_skip_share", type=float, default=0.01)
    return p


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    setup_logging()
    try:
        crop = MouthCropSettings.of_face(args.mean_face, args.roi_size, args.roi_resize, args.smooth_window)
    except DataError as e:
        raise SystemExit(
            f"--mean_face: {e}\n  For LRS3 use the official 20words_mean_face.npy (auto_avsr's "
            f"preparation/detectors/retinaface/ or AV-HuBERT's preparation); the mini corpus writes its own."
        )
    include = read_id_list(args.include_list) if args.include_list else None
    exclude = read_id_list(args.exclude_list) if args.exclude_list else None
    try:
        jobs = find_jobs(
            args.corpus_root, args.subsets.split(","), args.landmarks_root, args.max_seconds, include, exclude
        )
    except IdListError as e:
        raise SystemExit(f"--{e.which}_list {getattr(args, e.which + '_list')}: {e}")
    if not jobs:
        raise SystemExit(f"no videos found under {args.corpus_root} for subsets {args.subsets}")
    # Two videos with one id (e.g. the same clip under pretrain/ and trainval/) would write the same
    # media files from two workers; keep the first and report the others before anything is written.
    jobs, duplicates = _drop_duplicate_ids(jobs)
    args.media_dir.mkdir(parents=True, exist_ok=True)
    work = functools.partial(process, media_dir=args.media_dir, crop=crop)
    results = []
    with multiprocessing.Pool(args.nj) if args.nj > 1 else _Serial() as pool:
        for r in tqdm(
            pool.imap_unordered(work, jobs, chunksize=4),
            total=len(jobs),
            desc=f"prep {args.output_dir.name}",
            unit="video",
            file=sys.stderr,
            mininterval=5,
        ):
            results.append(r)

    tables = {n: {} for n in TABLES}
    skipped, notes = list(duplicates), Counter()
    for r in sorted(results, key=lambda r: str(r.video)):
        if r.skipped:
            skipped.append((r.video, r.skipped))
            continue
        for kind, _ in r.notes:
            notes[kind] += 1
        for u in r.utterances:
            if u.utt in tables["text"]:  # a segment id that equals another video's id
                skipped.append((r.video, f"DuplicateId: duplicate utterance id {u.utt} (kept the first)"))
                continue
            tables[INPUTS["audio"].scp][u.utt] = u.wav
            tables[INPUTS["video"].scp][u.utt] = u.npy
            tables["text"][u.utt] = u.text
            tables["utt2spk"][u.utt] = u.speaker
            tables["utt2num_frames"][u.utt] = str(u.frames)
    share = len(skipped) / (len(jobs) + len(duplicates))
    with atomic_write(args.output_dir / "prep_report.txt") as f:
        f.write(
            f"videos: {len(jobs) + len(duplicates)}\nutterances: {len(tables['text'])}\n"
            f"skipped: {len(skipped)} ({100 * share:.2f} %)\n"
        )
        reasons = Counter(reason.split(":")[0] for _, reason in skipped)
        for reason, count in reasons.most_common():
            f.write(f"  {reason}: {count}\n")
        for note, count in notes.most_common():
            f.write(f"note: {note}: {count} files\n")
        for video, reason in skipped:
            f.write(f"SKIP {video}\t{reason}\n")
    crop.write(args.output_dir / CROP_SETTINGS)
    if tables["text"]:
        write_data_dir(args.output_dir, tables)
        n = validate_data_dir(args.output_dir)
    else:
        n = 0
    logger.info(
        f"{args.output_dir}: kept {n} utterances from {len(jobs) + len(duplicates)} videos; skipped {len(skipped)} "
        f"({100 * share:.2f} %), see {args.output_dir / 'prep_report.txt'}"
    )
    for video, reason in skipped[:10]:
        logger.warning(f"skipped {video}: {reason}")
    if share > args.max_skip_share or n == 0:
        logger.error(f"{100 * share:.2f} % of the videos were skipped (limit {100 * args.max_skip_share:.2f} %)")
        sys.exit(1)


def _drop_duplicate_ids(jobs):
    """Jobs with unique utterance ids, and (video, reason) for each later job that repeats an id."""
    first, kept, dropped = {}, [], []
    for job in jobs:
        if job.utt_prefix in first:
            dropped.append(
                (
                    job.video,
                    f"DuplicateId: duplicate utterance id {job.utt_prefix} "
                    f"(also {first[job.utt_prefix]}; kept that one)",
                )
            )
        else:
            first[job.utt_prefix] = job.video
            kept.append(job)
    return kept, dropped


class _Serial:
    """Pool stand-in for --nj 1 (no worker processes)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap_unordered(self, fn, items, chunksize=1):
        return map(fn, items)


if __name__ == "__main__":
    main()
