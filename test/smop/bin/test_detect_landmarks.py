"""detect_landmarks on an LRS3-layout corpus of real-face clips: files, report, re-runs, and prepare_lrs3 on them."""

import numpy as np
import pytest

from face_clips import render, require_landmarks_extra, smooth_path, write_clip
from smop.bin import detect_landmarks, prepare_lrs3
from smop.data.datadir import read_table, validate_data_dir
from smop.mini.mean_face import write_mean_face


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """test/: a face, a clip without any face, a face with faceless frames, and a file that is no video."""
    require_landmarks_extra()
    root = tmp_path_factory.mktemp("lrs3") / "corpus"
    write_clip(root / "test" / "spk1" / "00001.mp4", render(smooth_path(20)), "HELLO THERE")
    write_clip(root / "test" / "spk1" / "00002.mp4", render([None] * 15), "NOBODY HERE")
    write_clip(root / "test" / "spk2" / "00001.mp4", render(smooth_path(25, faceless=(3, 4, 20))), "SOMETIMES AWAY")
    (root / "test" / "spk2" / "00002.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    (root / "test" / "spk2" / "00002.txt").write_text("Text:  BROKEN\n")
    return root


def _run(*args):
    try:
        detect_landmarks.main([str(a) for a in args])
        return 0
    except SystemExit as e:
        return e.code


def test_detect_report_rerun_and_prepare(corpus, tmp_path):
    out = tmp_path / "landmarks"
    common = ["--corpus_root", corpus, "--subsets", "test", "--landmarks_root", out, "--nj", "2"]
    assert _run(*common) == 1  # 2 of 4 videos without landmarks: above the default 1 % limit
    face, nobody, away = (out / "test" / p for p in ("spk1/00001.npy", "spk1/00002.npy", "spk2/00001.npy"))
    marks = np.load(face)
    assert marks.shape == (20, 68, 2) and marks.dtype == np.float32 and not np.isnan(marks).any()
    assert np.isnan(np.load(nobody)).all() and np.load(nobody).shape == (15, 68, 2)
    missing = np.isnan(np.load(away)).any(axis=(1, 2))
    assert missing.nonzero()[0].tolist() == [3, 4, 20]
    assert not (out / "test" / "spk2" / "00002.npy").exists()
    report = (out / "test" / "detect_report.txt").read_text()
    assert report.startswith(
        "videos: 4\nwith a face: 2\nno face in any frame: 1\nunreadable: 1\n  MediaError: 1\n"
        "kept from an earlier run: 0\nframes: 60, without a face: 18 (30.00 %)\n"
    )
    assert f"NOFACE {corpus}/test/spk1/00002.mp4\tno face in any of its 15 frames\n" in report
    assert f"SKIP {corpus}/test/spk2/00002.mp4\tMediaError: {corpus}/test/spk2/00002.mp4: decoding failed" in report
    assert not list(out.rglob("*.tmp"))

    # re-run: finished files are kept untouched, the unreadable video is tried again
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    assert _run(*common, "--max_skip_share", "0.5") == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")} == stamps
    report = (out / "test" / "detect_report.txt").read_text()
    assert "with a face: 2\n" in report and "kept from an earlier run: 3\n" in report
    assert "NOFACE" in report and "SKIP" in report

    # prepare_lrs3 reads these files: the faceless clip and the broken file are skipped with their reasons
    write_mean_face(tmp_path / "mean_face.npy")  # any frontal reference face will do for these checks
    args = [
        "--corpus_root",
        str(corpus),
        "--landmarks_root",
        str(out),
        "--subsets",
        "test",
        "--output_dir",
        str(tmp_path / "data"),
        "--media_dir",
        str(tmp_path / "media"),
        "--max_skip_share",
        "0.6",
        "--mean_face",
        str(tmp_path / "mean_face.npy"),
    ]
    prepare_lrs3.main(args)
    assert validate_data_dir(tmp_path / "data") == 2
    rois = np.load(dict(read_table(tmp_path / "data" / "video.scp"))["spk2-00001"])
    assert rois.shape == (25, 96, 96)
    prep = (tmp_path / "data" / "prep_report.txt").read_text()
    assert f"SKIP {corpus}/test/spk1/00002.mp4\tLandmarkError: no frame has landmarks" in prep
    assert f"SKIP {corpus}/test/spk2/00002.mp4\tMediaError" in prep
    assert "note: landmarks interpolated: 1 files" in prep


def test_damaged_landmark_file_is_named(corpus, tmp_path):
    out = tmp_path / "landmarks"
    (out / "test" / "spk1").mkdir(parents=True)
    (out / "test" / "spk1" / "00001.npy").write_bytes(b"not numpy")
    assert _run("--corpus_root", corpus, "--subsets", "test", "--landmarks_root", out, "--max_skip_share", "1") == 0
    report = (out / "test" / "detect_report.txt").read_text()
    assert "unusable file from an earlier run" in report and "remove it to detect again" in report


def test_missing_subset(corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such LRS3 subset directory"):
        _run("--corpus_root", corpus, "--subsets", "trainval", "--landmarks_root", tmp_path)
