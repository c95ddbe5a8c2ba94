"""Case 8: face-landmark detection speed from raw video, in frames per second on one CPU core.

The videos of case 6 (224x224 H.264 at 25 fps, LRS3's frame size; the mini corpus's talking faces
scaled up with their landmarks) are decoded to grey frames and run through dlib, pinned to one
core: the HOG detector (AV-HuBERT's) and the CNN (MMOD) one, each followed by the 68-point shape
predictor, searching every frame or tracking the face between searches of every 5th frame (the
default). Detection's share of a preparation that starts from raw video is its time against that
of the rest of the per-video preparation (decode, mouth-ROI warp, wav + npy written). The detected
mouth centres are compared with the generator's own landmarks.

    python -m bench.landmark_speed
"""

import tempfile
import time
from pathlib import Path
from typing import List

import numpy as np

from bench.common import Row, interleaved_times
from bench.data_prep_speed import LRS3_SIZE, make_videos, measure_in_worker, pin_to_one_core, video_case_main

REAL_TIME_FPS = 25
CNN_FRAMES = 25  # the CNN runs at about one frame a second on a CPU core: a sample of frames
TRACKED = 5  # detect_every of the tracked runs (the default)


def _mouth_errors(found: np.ndarray, truth: np.ndarray) -> List[float]:
    from smop.data.mouth_roi import MOUTH

    ok = ~np.isnan(found).any(axis=(1, 2))
    return np.linalg.norm(found[ok][:, MOUTH].mean(1) - truth[ok][:, MOUTH].mean(1), axis=1).tolist()


def measure(pairs, media_dir: Path, mean_face: Path, repeats: int) -> dict:
    """Seconds per stage over all videos (median of interleaved repeats) on one core, and the
    detected mouth centres against the generator's."""
    from smop.data.face_landmarks import FaceLandmarkDetector
    from smop.data.lrs3.prepare import Job, process
    from smop.data.media import read_media
    from smop.data.mouth_roi import MouthCropSettings

    pin_to_one_core()
    crop = MouthCropSettings.of_face(mean_face)  # the mini corpus's: its faces are drawn from it
    detectors = {
        f"{kind}{k}": FaceLandmarkDetector(kind, detect_every=k) for kind in ("hog", "cnn") for k in (1, TRACKED)
    }
    videos = [(read_media(mp4, need=("video",))[1], np.load(marks)) for mp4, marks in pairs]

    def prepare():
        for mp4, marks in pairs:
            res = process(Job(mp4, marks, mp4.stem, "spk", None), media_dir, crop)
            if res.skipped:
                raise RuntimeError(f"{mp4}: {res.skipped}")

    found = {}  # each detector's landmarks from its last timed run (detection is deterministic)

    def detect(key):
        found[key] = [detectors[key](grey) for grey, _ in videos]

    out = interleaved_times(
        {
            "hog1": lambda: detect("hog1"),
            f"hog{TRACKED}": lambda: detect(f"hog{TRACKED}"),
            "decode": lambda: [read_media(mp4, need=("video",)) for mp4, _ in pairs],
            "prep": prepare,
        },
        repeats=repeats,
    )
    out["frames"] = sum(grey.shape[0] for grey, _ in videos)
    sample = videos[0][0][:CNN_FRAMES]  # consecutive frames, so that the tracker has something to follow
    for k in (1, TRACKED):
        t = time.perf_counter()
        marks = detectors[f"cnn{k}"](sample)
        out[f"cnn{k}"] = time.perf_counter() - t
        out[f"cnn{k}_missed"] = int(np.isnan(marks).any(axis=(1, 2)).sum())
    out["cnn_frames"] = len(sample)
    out.update(hd_search(videos[:3], repeats))
    for k in (1, TRACKED):
        marks = found[f"hog{k}"]
        errors = [e for f, (_, truth) in zip(marks, videos) for e in _mouth_errors(f, truth)]
        out[f"hog{k}_missed"] = sum(int(np.isnan(f).any(axis=(1, 2)).sum()) for f in marks)
        out[f"hog{k}_err"] = (float(np.mean(errors)), float(np.percentile(errors, 95)), float(np.max(errors)))
    return out


def hd_search(videos, repeats: int, size=(720, 1280)) -> dict:
    """Videos' frames scaled up into 1280x720 frames (the face about 3x larger): the default
    tracker, whose whole-frame searches run on the frame scaled to MAX_SEARCH_SIDE, against one
    that searches the whole frame upsampled; seconds and mouth-centre errors against the truth."""
    import cv2

    from smop.data.face_landmarks import FaceLandmarkDetector

    h, w = size
    clips = []
    for grey, truth in videos:
        scale = h / grey.shape[1]
        width = round(grey.shape[2] * scale)
        left = (w - width) // 2
        frames = np.zeros((grey.shape[0], h, w), np.uint8)
        for t, frame in enumerate(grey):
            frames[t, :, left : left + width] = cv2.resize(frame, (width, h), interpolation=cv2.INTER_LINEAR)
        clips.append((frames, truth * scale + (left, 0)))
    full = FaceLandmarkDetector("hog", detect_every=TRACKED)
    full.MAX_SEARCH_SIDE = 10**6
    detectors = {"hd": FaceLandmarkDetector("hog", detect_every=TRACKED), "hd_full": full}
    found = {}  # each detector's landmarks from its last timed run

    def detect(key):
        found[key] = [detectors[key](f) for f, _ in clips]

    out = interleaved_times({k: (lambda k=k: detect(k)) for k in detectors}, repeats=repeats)
    for k in detectors:
        out[f"{k}_err"] = float(
            np.mean([e for marks, (_, truth) in zip(found[k], clips) for e in _mouth_errors(marks, truth)])
        )
    out["hd_frames"], out["hd_videos"], out["hd_face"] = (
        sum(len(f) for f, _ in clips),
        len(clips),
        h / videos[0][0].shape[1],
    )
    return out


def run(n: int = 8, repeats: int = 3) -> List[Row]:
    with tempfile.TemporaryDirectory() as d:
        make_videos(Path(d), n)
        m = measure_in_worker("bench.landmark_speed", Path(d), repeats)
    what = f"{n} videos, {m['frames']} frames, {LRS3_SIZE}x{LRS3_SIZE} 25 fps, 1 core"
    fps = {k: m["frames"] / m[k] for k in ("hog1", f"hog{TRACKED}")}
    fps.update({k: m["cnn_frames"] / m[k] for k in ("cnn1", f"cnn{TRACKED}")})
    rows = []
    for key, name in (
        ("hog1", "every frame, as AV-HuBERT"),
        (f"hog{TRACKED}", f"tracked, whole frame every {TRACKED}th (default)"),
    ):
        mean, p95, worst = m[f"{key}_err"]
        rows.append(
            Row(
                f"8 dlib HOG face landmarks, {name} ({what})",
                f"{fps[key]:.1f} frames/s",
                f"{REAL_TIME_FPS} frames/s (real time)",
                fps[key] / REAL_TIME_FPS,
                "≥ 1× real time per core",
                fps[key] >= REAL_TIME_FPS,
                f"with the video decoding: {m['frames'] / (m[key] + m['decode']):.1f} frames/s; frames without a "
                f"face: {m[f'{key}_missed']}; mouth centre vs the generator's landmarks: mean {mean:.2f} px, "
                f"95th percentile {p95:.2f} px, max {worst:.2f} px",
            )
        )
    tracked_err, every_err = m[f"hog{TRACKED}_err"][0], m["hog1_err"][0]
    rows.append(
        Row(
            f"8 HOG tracking speed-up and mouth-centre error (tracked vs every frame; {what})",
            f"{fps[f'hog{TRACKED}'] / fps['hog1']:.2f}× faster, mean error {tracked_err:.2f} px",
            f"mean error {every_err:.2f} px (every frame)",
            tracked_err / every_err,
            "error ≤ every frame's + 0.2 px",
            tracked_err <= every_err + 0.2,
        )
    )
    for key, name in (("cnn1", "every frame"), (f"cnn{TRACKED}", f"tracked, whole frame every {TRACKED}th")):
        rows.append(
            Row(
                f"8 dlib CNN (MMOD) face landmarks, {name} ({m['cnn_frames']} consecutive frames, "
                f"{LRS3_SIZE}x{LRS3_SIZE}, 1 core)",
                f"{fps[key]:.2f} frames/s",
                f"{fps['hog1']:.1f} frames/s (HOG, every frame)",
                fps[key] / fps["hog1"],
                "reported",
                None,
                f"frames without a face: {m[f'{key}_missed']} of {m['cnn_frames']}",
            )
        )
    hd = {k: m["hd_frames"] / m[k] for k in ("hd", "hd_full")}
    rows.append(
        Row(
            f"8 HOG landmarks on 1280x720 frames, tracked, whole-frame searches scaled to 960 px vs upsampled "
            f"({m['hd_videos']} videos, {m['hd_frames']} frames, scaled {m['hd_face']:.1f}x, 1 core)",
            f"{hd['hd']:.1f} frames/s, mouth error {m['hd_err']:.2f} px",
            f"{hd['hd_full']:.1f} frames/s, mouth error {m['hd_full_err']:.2f} px (whole frame upsampled)",
            hd["hd"] / hd["hd_full"],
            "≥ 1× real time per core",
            hd["hd"] >= REAL_TIME_FPS,
        )
    )
    for key, name in (("hog1", "every frame"), (f"hog{TRACKED}", "tracked (default)")):
        share = m[key] / (m[key] + m["prep"])
        rows.append(
            Row(
                f"8 HOG landmark detection's share of the preparation from raw video, {name} ({what})",
                f"{100 * share:.0f} %",
                f"{m['prep']:.2f} s the rest of the per-video preparation, {m[key]:.2f} s detection",
                None,
                "reported",
                None,
            )
        )
    return rows


def main(cmd=None):
    video_case_main(__doc__, run, measure, cmd)


if __name__ == "__main__":
    main()
