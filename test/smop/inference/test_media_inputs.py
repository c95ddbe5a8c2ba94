"""Media files -> model inputs: landmarks found per file, crops as data preparation makes them,
missing modalities blanked or refused on purpose."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from smop.data.datadir import read_table
from smop.data.errors import DataError
from smop.data.face_landmarks import DetectorUnavailable
from smop.data.mouth_roi import MouthCropSettings
from smop.inference.media_inputs import InputError, LandmarkFiles, LandmarksRequired, NoFace, as_stored, read_inputs


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """One mini-corpus clip (mp4 + landmarks), prepared by data preparation, and its crop settings."""
    from smop.bin import prepare_lrs3
    from smop.mini.corpus import main as make_corpus

    root = tmp_path_factory.mktemp("clip")
    make_corpus(
        [
            "--out",
            str(root / "mini"),
            "--n_trainval",
            "1",
            "--n_valid",
            "0",
            "--n_pretrain",
            "0",
            "--n_test",
            "1",
            "--nj",
            "1",
        ]
    )
    prepare_lrs3.main(
        [
            "--corpus_root",
            str(root / "mini" / "corpus"),
            "--landmarks_root",
            str(root / "mini" / "landmarks"),
            "--subsets",
            "test",
            "--output_dir",
            str(root / "data"),
            "--media_dir",
            str(root / "media"),
            "--mean_face",
            str(root / "mini" / "mean_face.npy"),
            "--roi_size",
            "96",
            "--roi_resize",
            "48",
        ]
    )
    (mp4,) = (root / "mini" / "corpus" / "test").glob("*/*.mp4")
    marks = root / "mini" / "landmarks" / "test" / mp4.parent.name / f"{mp4.stem}.npy"
    ((utt, wav),) = read_table(root / "data" / "wav.scp")
    return {
        "root": root,
        "mp4": mp4,
        "marks": marks,
        "wav": Path(wav),
        "npy": Path(dict(read_table(root / "data" / "video.scp"))[utt]),
        "crop": MouthCropSettings.read(root / "data" / "mouth_crop.yaml"),
        "face": root / "mini" / "mean_face.npy",
    }


def _ffmpeg(src: Path, dst: Path, *opts) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *opts, str(dst)], check=True)
    return dst


def test_inputs_equal_those_data_preparation_writes(clip):
    inputs = read_inputs(clip["mp4"], ("audio", "video"), clip["crop"], clip["marks"])
    np.testing.assert_array_equal(inputs.video, np.load(clip["npy"]))
    np.testing.assert_array_equal(inputs.speech, soundfile.read(clip["wav"], dtype="float32")[0])
    assert inputs.video.shape[1:] == (48, 48) and inputs.notes == []
    assert inputs.seconds == pytest.approx(inputs.video.shape[0] / 25)


def test_an_audio_model_reads_only_the_audio(clip):
    inputs = read_inputs(clip["mp4"], ("audio",), None, None)  # no landmarks or crop settings needed
    assert inputs.video is None and inputs.speech.dtype == np.float32 and inputs.speech.size > 16000


def test_missing_modalities(clip, tmp_path):
    audio_only = _ffmpeg(clip["mp4"], tmp_path / "a.mp4", "-vn", "-c", "copy")
    video_only = _ffmpeg(clip["mp4"], tmp_path / "v.mkv", "-an", "-c", "copy")
    faceless = tmp_path / "faceless.npy"
    np.save(faceless, np.full_like(np.load(clip["marks"]), np.nan))
    av = ("audio", "video")
    got = read_inputs(audio_only, av, clip["crop"], None)
    assert (
        got.video is None
        and got.speech is not None
        and "no video stream: decoded with the video blanked" in got.notes[0]
    )
    got = read_inputs(video_only, av, clip["crop"], clip["marks"])
    assert (
        got.speech is None
        and got.video is not None
        and "no audio stream: decoded with the audio blanked" in got.notes[0]
    )
    got = read_inputs(clip["mp4"], av, clip["crop"], faceless)
    assert (
        got.video is None and "no usable face (no frame has landmarks): decoded with the video blanked" in got.notes[0]
    )
    with pytest.raises(NoFace, match=f"{clip['mp4']}: no usable face"):
        read_inputs(clip["mp4"], ("video",), clip["crop"], faceless)  # a VSR model has nothing else to read
    with pytest.raises(NoFace, match="no audio stream and no usable face"):
        read_inputs(video_only, av, clip["crop"], faceless)
    with pytest.raises(DataError, match=f"{audio_only}: no video stream"):
        read_inputs(audio_only, ("video",), clip["crop"], None)
    with pytest.raises(DataError, match=f"{video_only}: no audio stream"):
        read_inputs(video_only, ("audio",), None, None)


def test_landmarks_that_do_not_fit_are_named(clip, tmp_path):
    short = tmp_path / "short.npy"
    np.save(short, np.load(clip["marks"])[:-5])
    with pytest.raises(DataError, match="landmark frames for .* video frames"):
        read_inputs(clip["mp4"], ("video",), clip["crop"], short)
    with pytest.raises(DataError, match=f"no landmarks file {tmp_path / 'none.npy'}"):
        read_inputs(clip["mp4"], ("video",), clip["crop"], tmp_path / "none.npy")
    with pytest.raises(InputError, match="records no mouth-crop settings"):
        read_inputs(clip["mp4"], ("audio", "video"), None, clip["marks"])


def test_landmark_files(tmp_path):
    a, b = Path("/data/spk1/00001.mp4"), Path("/data/spk2/00001.mkv")
    assert LandmarkFiles(None, 2).path_for(a) is None
    assert LandmarkFiles(f"{tmp_path}/{{parent}}/{{stem}}.npy", 2).path_for(b) == tmp_path / "spk2" / "00001.npy"
    assert LandmarkFiles("{dir}/{name}.npy", 1).path_for(a) == Path("/data/spk1/00001.mp4.npy")
    assert LandmarkFiles(str(tmp_path), 2).path_for(a) == tmp_path / "00001.npy"
    one = tmp_path / "marks.npy"
    one.write_bytes(b"")
    assert LandmarkFiles(str(one), 1).path_for(a) == one
    with pytest.raises(ValueError, match="one file's landmarks but 2 files"):
        LandmarkFiles(str(one), 2)
    with pytest.raises(ValueError, match="unknown fields \\['id'\\]"):
        LandmarkFiles("{id}.npy", 1)
    with pytest.raises(ValueError, match="no such file or folder"):
        LandmarkFiles(str(tmp_path / "absent.npy"), 1)


def test_audio_is_stored_as_data_preparation_stores_it(tmp_path):
    wave = np.random.default_rng(0).uniform(-0.9, 0.9, 8000).astype(np.float32)
    soundfile.write(tmp_path / "x.wav", wave, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(as_stored(wave), soundfile.read(tmp_path / "x.wav", dtype="float32")[0])


def test_crop_settings_are_checked(clip, tmp_path):
    face = tmp_path / "face.npy"
    shutil.copy(clip["face"], face)
    values = yaml.safe_load((clip["root"] / "data" / "mouth_crop.yaml").read_text())
    (tmp_path / "mouth_crop.yaml").write_text(yaml.safe_dump({**values, "reference_face": "face.npy"}))
    assert MouthCropSettings.read(tmp_path / "mouth_crop.yaml").reference_face == face  # relative to the file
    np.save(face, np.load(clip["face"]) + 1)
    with pytest.raises(DataError, match="is not the reference face the crops were made with"):
        MouthCropSettings.read(tmp_path / "mouth_crop.yaml")
    (tmp_path / "mouth_crop.yaml").write_text(yaml.safe_dump({"roi_size": 96}))
    with pytest.raises(DataError, match="mouth crop settings lack reference_face, reference_face_sha256"):
        MouthCropSettings.read(tmp_path / "mouth_crop.yaml")


def test_without_landmarks_the_face_is_detected(clip, monkeypatch):
    """No --landmarks: dlib finds the face (the landmarks extra), and the crops follow the given ones."""
    from face_clips import require_landmarks_extra

    require_landmarks_extra()
    given = read_inputs(clip["mp4"], ("video",), clip["crop"], clip["marks"]).video.astype(float)
    detected = read_inputs(clip["mp4"], ("video",), clip["crop"], None).video.astype(float)
    assert detected.shape == given.shape
    assert np.abs(detected - given).mean() < 8  # grey levels, the detector's landmarks against the generator's

    def unavailable(*args, **kwargs):
        raise DetectorUnavailable("dlib is not installed: install the landmarks extra")

    import smop.inference.media_inputs as media_inputs

    monkeypatch.setattr(media_inputs._detectors, "detector", None)
    monkeypatch.setattr("smop.data.face_landmarks.FaceLandmarkDetector", unavailable)
    with pytest.raises(
        LandmarksRequired,
        match=r"no face detector \(dlib is not installed: install the landmarks "
        r"extra\); or pass --landmarks",
    ):
        read_inputs(clip["mp4"], ("video",), clip["crop"], None)


def test_cover_art_is_no_video(clip, tmp_path):
    """An audio file with an attached picture decodes as audio: an AV model blanks the video and says
    why; a video file with cover art still gives its moving video."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x64:d=1", "-frames:v", "1"]
        + [str(tmp_path / "cover.png")],
        check=True,
    )
    song = _ffmpeg(
        clip["wav"],
        tmp_path / "song.mp3",
        "-i",
        str(tmp_path / "cover.png"),
        "-map",
        "0:a",
        "-map",
        "1:v",
        "-c:a",
        "libmp3lame",
        "-c:v",
        "mjpeg",
        "-disposition:v",
        "attached_pic",
    )
    got = read_inputs(song, ("audio", "video"), clip["crop"], None)
    assert got.video is None and got.speech.size > 16000
    assert got.notes == [
        f"{song}: no video stream (only a still picture, such as cover art): decoded with the video blanked, "
        "as modality dropout blanks it in training"
    ]
    with pytest.raises(DataError, match=f"{song}: no video stream"):
        read_inputs(song, ("video",), clip["crop"], None)
    with_art = _ffmpeg(
        clip["mp4"],
        tmp_path / "with_art.mp4",
        "-i",
        str(tmp_path / "cover.png"),
        "-map",
        "0:v",
        "-map",
        "0:a",
        "-map",
        "1:v",
        "-c:v:0",
        "copy",
        "-c:a",
        "copy",
        "-c:v:1",
        "png",
        "-disposition:v:1",
        "attached_pic",
    )
    got = read_inputs(with_art, ("audio", "video"), clip["crop"], clip["marks"])
    np.testing.assert_array_equal(got.video, np.load(clip["npy"]))
    assert got.notes == []


def test_a_damaged_file_is_blamed_for_what_goes_wrong_with_it(clip, tmp_path):
    """A truncated mkv decodes in part with exit 0: its landmarks no longer fit, which is the
    file's damage, not the landmarks'; read as audio only, it decodes as far as it goes, with a note."""
    whole = _ffmpeg(clip["mp4"], tmp_path / "whole.mkv", "-c", "copy")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(DataError) as e:
        read_inputs(cut, ("audio", "video"), clip["crop"], clip["marks"])
    assert str(e.value).startswith(f"{cut}: damaged file (ffmpeg: File ended prematurely); ")
    assert "landmark frames for" in str(e.value)
    got = read_inputs(cut, ("audio",), None, None)
    assert got.notes == [f"{cut}: damaged file (ffmpeg: File ended prematurely): decoded as far as it goes"]
    assert read_inputs(whole, ("audio", "video"), clip["crop"], clip["marks"]).notes == []
