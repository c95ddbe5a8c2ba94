"""Case 6: data preparation speed, as a multiple of real time on one CPU core.

Videos like LRS3's (224x224 H.264 at 25 fps, AAC audio; made from the mini corpus's talking
faces, scaled up with their landmarks) go through the LRS3 preparation, pinned to one core
(ffmpeg included): the whole per-video job (one ffmpeg pass for the stream layout, frames and
16 kHz mono audio, mouth-ROI warp, wav + npy written), and its two halves timed alone.

    python -m bench.data_prep_speed
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

import numpy as np

from bench.common import Row, parser, report

LRS3_SIZE = 224


def make_videos(out: Path, n: int) -> List[tuple]:
    """(mp4, landmarks.npy) pairs at LRS3's frame size."""
    from smop.mini.corpus import main as make_corpus

    make_corpus(
        [
            "--out",
            str(out / "mini"),
            "--n_trainval",
            str(n),
            "--n_valid",
            "0",
            "--n_pretrain",
            "0",
            "--n_test",
            "0",
            "--nj",
            "2",
        ]
    )
    pairs = []
    for mp4 in sorted((out / "mini" / "corpus" / "trainval").glob("*/*.mp4"))[:n]:
        rel = mp4.relative_to(out / "mini" / "corpus")
        marks = np.load(out / "mini" / "landmarks" / rel.with_suffix(".npy"))
        width = int(
            json.loads(
                subprocess.run(
                    [
                        "ffprobe",
                        "-v",
                        "error",
                        "-select_streams",
                        "v:0",
                        "-show_entries",
                        "stream=width",
                        "-of",
                        "json",
                        str(mp4),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )["streams"][0]["width"]
        )
        big = out / f"{mp4.parent.name}-{mp4.stem}.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-i",
                str(mp4),
                "-vf",
                f"scale={LRS3_SIZE}:{LRS3_SIZE}",
                "-c:v",
                "libx264",
                "-crf",
                "20",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "copy",
                str(big),
            ],
            check=True,
        )
        np.save(big.with_suffix(".npy"), (marks * LRS3_SIZE / width).astype(np.float32))
        shutil.copy(mp4.with_suffix(".txt"), big.with_suffix(".txt"))
        pairs.append((big, big.with_suffix(".npy")))
    return pairs


def measure(pairs, media_dir: Path, mean_face: Path, repeats: int) -> dict:
    """Seconds per stage over all videos (median of repeats), on one core."""
    from smop.data.landmarks import load_landmarks
    from smop.data.lrs3.prepare import Job, process
    from smop.data.media import read_media
    from smop.data.mouth_roi import MouthCropSettings, crop_mouths

    pin_to_one_core()
    crop = MouthCropSettings.of_face(mean_face)  # the mini corpus's: its faces are drawn from it
    reference = crop.reference
    totals = {"job": [], "decode": [], "warp": []}
    audio_seconds = 0.0
    for rep in range(repeats + 1):
        acc = dict.fromkeys(totals, 0.0)
        for mp4, marks in pairs:
            t = time.perf_counter()
            res = process(Job(mp4, marks, mp4.stem, "spk", None), media_dir, crop)
            acc["job"] += time.perf_counter() - t
            if res.skipped:
                raise RuntimeError(f"{mp4}: {res.skipped}")
            t = time.perf_counter()
            _, frames, wave = read_media(mp4)
            acc["decode"] += time.perf_counter() - t
            lm = load_landmarks(str(marks))[: frames.shape[0]]
            t = time.perf_counter()
            crop_mouths(frames[: lm.shape[0]], lm, reference=reference)
            acc["warp"] += time.perf_counter() - t
            if rep == 0:
                audio_seconds += wave.size / 16000
        if rep:  # the first pass warms caches
            for k, v in acc.items():
                totals[k].append(v)
    out = {k: statistics.median(v) for k, v in totals.items()}
    out["seconds"] = audio_seconds
    return out


def run(n: int = 8, repeats: int = 3) -> List[Row]:
    with tempfile.TemporaryDirectory() as d:
        pairs = make_videos(Path(d), n)
        m = measure_in_worker("bench.data_prep_speed", Path(d), repeats)
    speech = m["seconds"]
    what = f"{len(pairs)} videos, {speech:.1f} s, {LRS3_SIZE}x{LRS3_SIZE} 25 fps, 1 core"
    rows = []
    for key, name in (
        ("job", "whole per-video preparation (decode, ROI warp, write)"),
        ("warp", "mouth-ROI extraction (landmark smoothing + similarity warp)"),
        ("decode", "audio + frame extraction (one ffmpeg pass to 16 kHz mono + RGB frames made grey)"),
    ):
        x = speech / m[key]
        rows.append(
            Row(f"6 {name} ({what})", f"{x:.1f}× real time", f"{m[key]:.2f} s for {speech:.1f} s", x, "≥ 10×", x >= 10)
        )
    rows.append(reading_memory())
    return rows


# A fresh process reads the video: its peak resident memory above what it held before, against
# the grey frames it returns (the raw RGB is made grey a chunk at a time, never held whole).
_READ = """
import json, sys
from bench.memory import peak_rss_bytes, reset_peak_rss, rss_bytes
from smop.data.media import read_media
before = rss_bytes()
reset_peak_rss()
_, frames, _ = read_media(sys.argv[1])
print(json.dumps({"peak": peak_rss_bytes() - before, "frames": frames.nbytes}))
"""


def reading_memory(seconds: int = 60, size: str = "1280x720") -> Row:
    with tempfile.TemporaryDirectory() as d:
        mp4 = Path(d) / "talk.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                f"testsrc=size={size}:rate=25:duration={seconds}",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency=440:duration={seconds}",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-c:a",
                "aac",
                "-shortest",
                str(mp4),
            ],
            check=True,
        )
        proc = subprocess.run(
            [sys.executable, "-c", _READ, str(mp4)],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    ratio = m["peak"] / m["frames"]
    return Row(
        f"6 peak memory of reading {seconds} s of {size} video (read_media, above the process before)",
        f"{m['peak'] / 2**30:.2f} GiB",
        f"{m['frames'] / 2**30:.2f} GiB (its grey frames)",
        ratio,
        "≤ 2.5×",
        ratio <= 2.5,
        "the RGB (3 bytes a pixel) is made grey 64 frames at a time; whole, it peaked at 6.0×",
    )


def pin_to_one_core() -> None:
    """This process, and the ffmpeg runs it starts, on one core with one thread."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)


def measure_in_worker(module: str, videos: Path, repeats: int) -> dict:
    """``module``'s measure() on the videos made in ``videos``, in a fresh process (pinned to one
    core there, while this one keeps its threads)."""
    proc = subprocess.run(
        [sys.executable, "-m", module, "--worker", str(videos), "--repeats", str(repeats)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def video_case_main(doc: str, run, measure, cmd=None) -> None:
    """Command line of a case measured on generated videos: ``run(videos, repeats)`` prints its
    rows; the hidden ``--worker DIR`` is the pinned process that measures the videos in DIR."""
    p = parser(doc, root=False)
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(cmd)
    if args.worker:
        pairs = sorted((mp4, mp4.with_suffix(".npy")) for mp4 in args.worker.glob("*.mp4"))
        media = args.worker / "media"
        media.mkdir(exist_ok=True)
        print(json.dumps(measure(pairs, media, args.worker / "mini" / "mean_face.npy", args.repeats)))
        return
    print(report(run(args.videos, args.repeats)))


def main(cmd=None):
    video_case_main(__doc__, run, measure, cmd)


if __name__ == "__main__":
    main()
