"""The LRS3 recipe's stage 0 (data preparation) on a corpus without landmark files: clips of a real
face (scikit-image's astronaut) in LRS3's layout go through local/data.sh with LRS3_LANDMARKS empty,
so the landmarks are detected with dlib first; and a trainval without videos is said."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from face_clips import render, require_landmarks_extra, smooth_path, write_clip
from smop.data.datadir import read_table, validate_data_dir
from smop.data.media import read_media
from smop.mini.mean_face import write_mean_face

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "lrs3" / "avsr_smop"
MEAN_FACE = ROOT.parent / "shared" / "reference" / "20words_mean_face.npy"
CLIPS = {  # <subset>/<speaker>/<id>: (frames, faceless frames, transcript)
    "trainval/spkA/00001": (25, (), "THE FIRST ONE"),
    "trainval/spkA/00002": (20, (5, 6), "A SECOND ONE"),
    "trainval/spkB/00001": (22, (), "HELD OUT"),
    "test/spkC/00001": (25, (), "TESTING THIS"),
    "test/spkC/00002": (18, (17,), "AND THAT"),
}


def _recipe_copy(tmp: Path) -> Path:
    """A recipe dir under ``tmp`` whose files link to the real ones (the run writes data/ there)."""
    work = tmp / "egs" / "lrs3" / "avsr_smop"
    (work / "local").mkdir(parents=True)
    for name in ("db.sh", "path.sh", "utils", "local/data.sh", "local/check_mean_face.sh"):
        (work / name).symlink_to(RECIPE / name)  # path.sh finds the repository (tools/venv) through its link
    return work


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _data_sh(work: Path, env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "local/data.sh", "--nj", "2", "--train_subsets", "trainval", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _mean_face(tmp_path: Path) -> Path:
    if MEAN_FACE.is_file():
        return MEAN_FACE
    # Any frontal reference face crops these clips; the official one is third-party data.
    write_mean_face(tmp_path / "mean_face.npy")
    return tmp_path / "mean_face.npy"


def _env(corpus: Path, mean_face: Path, valid_id: str) -> dict:
    return {
        **os.environ,
        "LRS3": str(corpus),
        "LRS3_LANDMARKS": "",
        "LRS3_VALID_ID": valid_id,
        "MEAN_FACE": str(mean_face),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }


def test_stage1_detects_landmarks_without_landmark_files(tmp_path):
    require_landmarks_extra()
    corpus = tmp_path / "LRS3"
    for key, (n, faceless, text) in CLIPS.items():
        write_clip(corpus / f"{key}.mp4", render(smooth_path(n, faceless, cycles=0.3)), text)
    (tmp_path / "valid.id").write_text("spkB/00001\n")
    work = _recipe_copy(tmp_path)
    env = _env(corpus, _mean_face(tmp_path), str(tmp_path / "valid.id"))
    run = _data_sh(work, env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "No LRS3_LANDMARKS: dlib hog landmarks of" in run.stdout

    landmarks = work / "data" / "local" / "landmarks"
    for key, (n, faceless, _) in CLIPS.items():
        marks = np.load(landmarks / f"{key}.npy")
        assert marks.shape == (n, 68, 2) and np.isnan(marks).any(axis=(1, 2)).nonzero()[0].tolist() == list(faceless)
    for subset, count in (("trainval", 3), ("test", 2)):
        assert f"--subsets {subset} --detector hog" in (landmarks / subset / ".done").read_text()  # its stamp
        assert f"videos: {count}\nwith a face: {count}\n" in (landmarks / subset / "detect_report.txt").read_text()

    for name, utts in (("train", 2), ("valid", 1), ("test", 2)):
        d = work / "data" / name
        assert validate_data_dir(d) == utts and "skipped: 0 " in (d / "prep_report.txt").read_text()
    rois = np.load(work / dict(read_table(work / "data" / "test" / "video.scp"))["spkC-00001"]).astype(float)
    assert rois.shape == (25, 96, 96)
    # The head turns, scales and moves; aligned on the detected landmarks, every mouth crop still
    # matches the first (normalised cross-correlation), unlike the same square of the video.
    _, frames, _ = read_media(corpus / "test" / "spkC" / "00001.mp4", need=("video",))
    still = frames[:, 72:168, 64:160].astype(float)
    aligned, raw = min(_ncc(r, rois[0]) for r in rois), min(_ncc(f, still[0]) for f in still)
    assert aligned > 0.5 and raw < 0.3, (aligned, raw)  # measured: 0.65 and 0.13

    again = _data_sh(work, env)
    assert again.returncode == 0 and "data/local/landmarks/test is up to date" in again.stdout
    assert "No LRS3_LANDMARKS" not in again.stdout and "data/test is up to date" in again.stdout
    # Landmarks made with another detector are not mixed with new ones, nor thrown away unasked.
    other = _data_sh(work, env, "--landmark_detector", "cnn")
    assert other.returncode == 1 and "data/local/landmarks/test was made from other inputs" in other.stdout
    assert (
        "was: detect_landmarks" in other.stdout
        and "--detector hog" in other.stdout
        and "--detector cnn" in other.stdout
    )
    assert "remove it to detect them again (rm -r data/local/landmarks/test)" in other.stdout
    assert (landmarks / "test" / "spkC" / "00001.npy").exists()


def test_stage0_says_when_trainval_lists_no_video(tmp_path):
    corpus = tmp_path / "LRS3"
    for subset in ("trainval", "test"):
        (corpus / subset / "spkA").mkdir(parents=True)  # speakers, no videos
    work = _recipe_copy(tmp_path)
    run = _data_sh(work, _env(corpus, _mean_face(tmp_path), ""))
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"{corpus}/trainval lists no video" in run.stdout and "LRS3_VALID_ID" in run.stdout
    assert not (work / "data" / "local" / "valid.id").exists()


def test_a_missing_model_is_named_before_data_preparation(tmp_path):
    """./run.sh from stage 0: the pretrained models of stage 1 are checked first, not hours later."""
    work = tmp_path / "egs" / "lrs3" / "avsr_smop"
    work.mkdir(parents=True)
    for entry in RECIPE.iterdir():
        if entry.name not in ("data", "dump", "exp", "pretrained"):
            (work / entry.name).symlink_to(entry)
    (tmp_path / "LRS3" / "test").mkdir(parents=True)
    env = {
        **os.environ,
        "LRS3": str(tmp_path / "LRS3"),
        "MEAN_FACE": str(_mean_face(tmp_path)),
        "WHISPER": str(tmp_path),
        "LLM": str(tmp_path / "no_llm"),
        "AVHUBERT": str(tmp_path / "x.pt"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    (tmp_path / "config.json").write_text("{}")  # WHISPER: a save_pretrained directory
    run = subprocess.run(
        ["bash", "run.sh", "--stage", "0"], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert f"llm model '{tmp_path / 'no_llm'}' is neither a directory nor in the Hugging Face cache" in out
    assert "Stage 0" not in out and not (work / "data").exists()
