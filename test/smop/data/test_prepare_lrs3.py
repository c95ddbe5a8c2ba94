"""LRS3 data preparation on a tiny generated corpus, including every kind of broken input."""

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from smop.bin import prepare_lrs3
from smop.data.datadir import read_table, validate_data_dir
from smop.data.mouth_roi import MouthCropSettings
from smop.mini.corpus import main as make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini")
    make_corpus(
        ["--out", str(out), "--n_trainval", "15", "--n_valid", "2", "--n_pretrain", "2", "--n_test", "3", "--nj", "2"]
    )
    return out


def _prepare(corpus_root, landmarks, out, *extra, subsets="trainval", mean_face=None):
    mean_face = mean_face or corpus_root.parent / "mean_face.npy"
    args = [
        "--corpus_root",
        str(corpus_root),
        "--landmarks_root",
        str(landmarks),
        "--subsets",
        subsets,
        "--mean_face",
        str(mean_face),
        "--output_dir",
        str(out / "data"),
        "--media_dir",
        str(out / "media"),
        *extra,
    ]
    try:
        prepare_lrs3.main(args)
        return 0
    except SystemExit as e:
        return e.code


def test_clean_corpus(corpus, tmp_path):
    code = _prepare(
        corpus / "corpus",
        corpus / "landmarks",
        tmp_path,
        "--subsets",
        "pretrain,trainval",
        "--max_seconds",
        "4",
        "--roi_resize",
        "48",
        subsets="pretrain,trainval",
    )
    assert code == 0
    d = tmp_path / "data"
    n = validate_data_dir(d)
    assert n >= 14  # 12 trainval clips + pretrain clips cut into 2+ segments each
    text = dict(read_table(d / "text"))
    assert all(t == t.lower() and len(t.split()) >= 1 for t in text.values())
    utt, wav = read_table(d / "wav.scp")[0]
    wave, rate = soundfile.read(wav)
    rois = np.load(dict(read_table(d / "video.scp"))[utt])
    assert rate == 16000 and wave.ndim == 1 and rois.dtype == np.uint8 and rois.shape[1:] == (48, 48)
    assert wave.size == rois.shape[0] * 640 == int(dict(read_table(d / "utt2num_frames"))[utt]) * 640
    segments = [u for u in text if u.count("-") == 2]
    assert segments, "pretrain clips longer than --max_seconds are cut"
    assert "skipped: 0 " in (d / "prep_report.txt").read_text()
    settings = MouthCropSettings.read(d / "mouth_crop.yaml")
    assert settings == MouthCropSettings(
        reference_face=(corpus / "mean_face.npy").resolve(),
        reference_face_sha256=hashlib.sha256((corpus / "mean_face.npy").read_bytes()).hexdigest(),
        roi_size=96,
        roi_resize=48,
        smooth_window=12,
    )


def test_the_reference_face_is_checked_first(corpus, tmp_path):
    message = _prepare(corpus / "corpus", corpus / "landmarks", tmp_path, mean_face=tmp_path / "nowhere.npy")
    assert re.match(r"--mean_face: cannot read the reference face .*nowhere.npy.*\n.*20words_mean_face.npy", message)
    np.save(tmp_path / "flat.npy", np.zeros((68, 3)))
    message = _prepare(corpus / "corpus", corpus / "landmarks", tmp_path, mean_face=tmp_path / "flat.npy")
    assert re.match(r"--mean_face: .*flat.npy: reference face of shape \(68, 3\)", message)
    assert not (tmp_path / "data").exists()


def _broken_corpus(corpus, root):
    """A copy of the trainval subset with one defect per video."""
    src = sorted((corpus / "corpus" / "trainval").glob("*/*.mp4"))
    shutil.copytree(corpus / "corpus" / "trainval", root / "corpus" / "trainval")
    shutil.copytree(corpus / "landmarks" / "trainval", root / "landmarks" / "trainval")
    shutil.copy(corpus / "mean_face.npy", root / "mean_face.npy")
    vids = [root / "corpus" / "trainval" / p.parent.name / p.name for p in src]
    marks = [root / "landmarks" / "trainval" / p.parent.name / (p.stem + ".npy") for p in src]
    defects = {}

    def ff(i, *opts):
        tmp = vids[i].with_name("tmp.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(vids[i]), *opts, str(tmp)], check=True)
        tmp.replace(vids[i])

    data = vids[0].read_bytes()
    vids[0].write_bytes(data[: len(data) // 2])
    defects[vids[0]] = "MediaError"  # cut in half
    ff(1, "-an", "-c", "copy")
    defects[vids[1]] = "no audio stream"
    ff(2, "-vn", "-c", "copy")
    defects[vids[2]] = "no video stream"
    vids[3].with_suffix(".txt").unlink()
    defects[vids[3]] = "cannot read transcript"
    vids[4].with_suffix(".txt").write_bytes("Text:  CAF\xc9 AU LAIT\n".encode("latin-1"))
    defects[vids[4]] = "not UTF-8"
    vids[5].with_suffix(".txt").write_text("Conf: 4\nWORD START END\n")
    defects[vids[5]] = "no 'Text:' line"
    vids[6].with_suffix(".txt").write_text("Text:   \n")
    defects[vids[6]] = "empty transcript"
    m = np.load(marks[7])
    np.save(marks[7], np.full_like(m, np.nan))
    defects[vids[7]] = "no frame has landmarks"
    marks[8].unlink()
    defects[vids[8]] = "no landmarks file"
    ff(9, "-c:v", "copy", "-ac", "2", "-ar", "44100")  # converted, not rejected
    m = np.load(marks[10])
    m[3:6] = np.nan
    np.save(marks[10], m)  # a few frames without a face: interpolated
    spaced = vids[11].with_name("bad id.mp4")
    vids[11].rename(spaced)
    vids[11].with_suffix(".txt").rename(spaced.with_suffix(".txt"))
    marks[11].rename(marks[11].with_name("bad id.npy"))
    defects[spaced] = "contains whitespace"
    m = np.load(marks[12])
    np.save(marks[12], np.broadcast_to(m[:, :1], m.shape).copy())  # every point on one spot: no face to align
    defects[vids[12]] = "AlignmentError"
    shell = vids[13].with_name("it's;$(touch${IFS}PWNED)&.mp4")  # kept: never passed through a shell
    vids[13].rename(shell)
    vids[13].with_suffix(".txt").rename(shell.with_suffix(".txt"))
    marks[13].rename(marks[13].with_name(shell.stem + ".npy"))
    # the same <speaker>/<video> under pretrain/ and trainval/: the first (pretrain) is kept
    for src, dst in ((vids[14], root / "corpus" / "pretrain"), (marks[14], root / "landmarks" / "pretrain")):
        (dst / src.parent.name).mkdir(parents=True, exist_ok=True)
        for f in src.parent.glob(src.stem + ".*"):
            shutil.copy(f, dst / src.parent.name / f.name)
    defects[vids[14]] = "duplicate utterance id"
    return defects, shell


def test_broken_inputs_are_reported_and_counted(corpus, tmp_path):
    defects, shell = _broken_corpus(corpus, tmp_path)
    code = _prepare(tmp_path / "corpus", tmp_path / "landmarks", tmp_path, subsets="pretrain,trainval")
    assert code == 1  # 12 of 16 videos skipped, far above the 1 % limit
    report = (tmp_path / "data" / "prep_report.txt").read_text()
    assert "videos: 16\n" in report and "skipped: 12 (75.00 %)" in report
    skips = {line.split("\t")[0][5:]: line.split("\t")[1] for line in report.splitlines() if line.startswith("SKIP ")}
    assert len(skips) == 12
    for video, reason in defects.items():
        assert reason in skips[str(video)], (video, skips[str(video)])
    assert "  DuplicateId: 1\n" in report and "  AlignmentError: 1\n" in report
    assert "note: audio converted to 16 kHz mono: 1 files" in report
    assert "note: landmarks interpolated: 1 files" in report
    # the good videos are kept (the stereo 44.1 kHz one converted), and the data dir is valid
    assert validate_data_dir(tmp_path / "data") == 4
    wav = dict(read_table(tmp_path / "data" / "wav.scp"))
    assert soundfile.info(wav[f"{shell.parent.name}-{shell.stem}"]).samplerate == 16000
    assert not list(tmp_path.rglob("PWNED")) and not (Path.cwd() / "PWNED").exists()
    # a generous limit makes the same run succeed
    assert (
        _prepare(
            tmp_path / "corpus",
            tmp_path / "landmarks",
            tmp_path,
            "--max_skip_share",
            "0.9",
            subsets="pretrain,trainval",
        )
        == 0
    )


def test_clips_shorter_than_the_smoothing_window_are_skipped(corpus, tmp_path):
    """As in the official preparation, which crops no clip shorter than its 12-frame window."""
    src = sorted((corpus / "corpus" / "test").glob("*/*.mp4"))[:2]
    for i, mp4 in enumerate(src):
        dst = tmp_path / "corpus" / "test" / mp4.parent.name / mp4.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        marks = np.load(corpus / "landmarks" / "test" / mp4.parent.name / (mp4.stem + ".npy"))
        frames = 11 if i == 0 else 12
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(mp4), "-frames:v", str(frames), "-t", str(frames / 25), str(dst)],
            check=True,
        )
        shutil.copy(mp4.with_suffix(".txt"), dst.with_suffix(".txt"))
        (tmp_path / "landmarks" / "test" / mp4.parent.name).mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "landmarks" / "test" / mp4.parent.name / (mp4.stem + ".npy"), marks[:frames])
    shutil.copy(corpus / "mean_face.npy", tmp_path / "mean_face.npy")
    assert (
        _prepare(tmp_path / "corpus", tmp_path / "landmarks", tmp_path, "--max_skip_share", "0.5", subsets="test") == 0
    )
    report = (tmp_path / "data" / "prep_report.txt").read_text()
    assert "skipped: 1 (50.00 %)" in report
    short = tmp_path / "corpus" / "test" / src[0].parent.name / src[0].name
    assert f"SKIP {short}\tAlignmentError: 11 frames, fewer than the 12-frame landmark smoothing window" in report
    assert dict(read_table(tmp_path / "data" / "utt2num_frames")) == {f"{src[1].parent.name}-{src[1].stem}": "12"}


def test_id_lists_that_do_not_fit_the_corpus_are_refused(corpus, tmp_path):
    """A valid.id left by a wrong corpus path would hold nothing back (exclude) or keep nothing (include)."""
    valid = (corpus / "valid.id").read_text().split()
    stale = tmp_path / "stale.id"
    stale.write_text("".join(f"otherspk/{i:05d}\n" for i in range(3)) + f"{valid[0]}\n")
    code = _prepare(corpus / "corpus", corpus / "landmarks", tmp_path, "--exclude_list", str(stale))
    assert (
        f"--exclude_list {stale}: the exclude list has 3 of 4 ids that are no video of {corpus / 'corpus'}/{{trainval}}"
        in code
    )
    assert "['otherspk/00000', 'otherspk/00001', 'otherspk/00002']" in code
    empty = tmp_path / "empty.id"
    empty.write_text("")
    code = _prepare(corpus / "corpus", corpus / "landmarks", tmp_path, "--include_list", str(empty))
    assert code.startswith(f"--include_list {empty}: the include list is empty")
    assert not (tmp_path / "data").exists()
    assert _prepare(corpus / "corpus", corpus / "landmarks", tmp_path, "--include_list", str(corpus / "valid.id")) == 0
    assert validate_data_dir(tmp_path / "data") == len(valid)


def test_a_pickled_landmarks_file_is_a_named_skip_and_the_others_are_prepared(corpus, tmp_path):
    for kind in ("corpus", "landmarks"):
        shutil.copytree(corpus / kind / "test", tmp_path / kind / "test")
    marks = sorted((tmp_path / "landmarks" / "test").glob("*/*.npy"))
    assert len(marks) == 3
    np.save(marks[0], np.array([np.load(marks[0]), None], dtype=object), allow_pickle=True)
    code = _prepare(
        tmp_path / "corpus",
        tmp_path / "landmarks",
        tmp_path,
        "--max_skip_share",
        "0.5",
        subsets="test",
        mean_face=corpus / "mean_face.npy",
    )
    assert code == 0
    report = (tmp_path / "data" / "prep_report.txt").read_text()
    video = tmp_path / "corpus" / "test" / marks[0].parent.name / (marks[0].stem + ".mp4")
    assert f"SKIP {video}\tLandmarkError: {marks[0]}: holds pickled Python objects, which smop never loads" in report
    assert "skipped: 1 (33.33 %)" in report and "allow_pickle" not in report
    assert validate_data_dir(tmp_path / "data") == 2
