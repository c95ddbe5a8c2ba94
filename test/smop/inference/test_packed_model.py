"""Packed models used anywhere: packing a small recipe run, loading the pack in a fresh process from
another folder or as a hub id of the local HF cache, decoding through the Python API and
``smop-transcribe``, with the hypotheses of ``avsr_inference`` on the same inputs."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from smop.data.inputs import data_triples
from smop.data.mouth_roi import CROP_SETTINGS, MouthCropSettings
from smop.experiment import ExperimentDir
from smop.utils.io import sha256_of
from tiny_experiment import add_to_hub_cache, write_datadir, write_train_config

SEARCH = ["--batch_size", "3", "--beam_size", "2", "--num_workers", "0"]


class Chdir:
    def __init__(self, path):
        self.path, self.old = path, None

    def __enter__(self):
        self.old = os.getcwd()
        os.chdir(self.path)

    def __exit__(self, *exc):
        os.chdir(self.old)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, pretrained):
    """Paths of the run (relative ones are relative to ``root``, the recipe directory)."""
    from smop.bin import avsr_inference, plot_expert_usage, prepare_lrs3, score_wer
    from smop.mini.corpus import main as make_corpus
    from smop.tasks.avsr import SmopAVSRTask

    root = tmp_path_factory.mktemp("recipe")
    shutil.copytree(Path(pretrained["llm"]).parent, root / "pretrained", ignore=shutil.ignore_patterns("*.pt"))
    parts = {
        "whisper": "pretrained/whisper",
        "avhubert": "pretrained/avhubert/tiny_vox_iter5.safetensors",
        "llm": "pretrained/llm",
    }
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
            "3",
            "--nj",
            "2",
        ]
    )
    face = root / "mini" / "mean_face.npy"  # the reference its faces are drawn from
    # What data preparation records about the crops of the training data
    MouthCropSettings.of_face(face, 96, None, 12).write(write_datadir(root / "data" / "train") / CROP_SETTINGS)
    write_datadir(root / "data" / "test", n=7, seed=5)
    with Chdir(root):
        prepare_lrs3.main(
            [
                "--corpus_root",
                "mini/corpus",
                "--landmarks_root",
                "mini/landmarks",
                "--subsets",
                "test",
                "--output_dir",
                "data/test_mp4",
                "--media_dir",
                "dump/media/test_mp4",
                "--mean_face",
                str(face),
                "--roi_size",
                "96",
            ]
        )
        write_train_config(root / "train.yaml", parts, Path("data/train"), max_epoch=1, num_iters_per_epoch=12)
        SmopAVSRTask.main(cmd=["--config", "train.yaml", "--output_dir", "exp/train_tiny"])
        sets = []
        for name in ("test", "test_mp4"):
            for triple in data_triples(f"data/{name}", "audiovisual"):
                sets += ["--data_path_and_name_and_type", ",".join(triple)]
            sets += ["--output_dir", f"exp/train_tiny/decode_decode/{name}"]
        avsr_inference.main(
            sets
            + [
                "--train_config",
                "exp/train_tiny/config.yaml",
                "--model_file",
                "exp/train_tiny/valid.loss.ave.pth",
                *SEARCH,
            ]
        )
        dec = Path("exp/train_tiny/decode_decode/test")
        score_wer.main(
            [
                "--ref",
                "data/test/text",
                "--hyp",
                str(dec / "1best_recog" / "text"),
                "--utt2spk",
                "data/test/utt2spk",
                "--output_dir",
                str(dec / "score_wer"),
            ]
        )
        plot_expert_usage.main(["exp/train_tiny", "--decode_tag", "decode_decode"])
    return root


def decoded(root: Path, name: str) -> dict:
    """{utterance: (text, score)} that avsr_inference wrote for a set."""
    out = root / "exp" / "train_tiny" / "decode_decode" / name / "1best_recog"
    texts = dict((line.split(" ", 1) + [""])[:2] for line in (out / "text").read_text().splitlines())
    scores = dict(line.split() for line in (out / "score").read_text().splitlines())
    return {k: (texts[k], float(scores[k])) for k in texts}


@pytest.fixture(scope="module")
def packed(recipe, tmp_path_factory):
    """The model packed with its pretrained parts, then moved away from the recipe, whose
    pretrained models are deleted: nothing of the recipe is left to lean on."""
    from smop.bin import pack_model

    with Chdir(recipe):
        pack_model.main(
            [
                "--exp_dir",
                "exp/train_tiny",
                "--out_dir",
                "exp/train_tiny/pack",
                "--copy_pretrained",
                "all",
                "--part_license",
                "audio_encoder=apache-2.0,video_encoder=apache-2.0",
                "--part_license",
                "decoder=apache-2.0",
                "--hub_id",
                "smop-test/tiny-avsr",
            ]
        )
        # The same model with its LLM named by hub id, for the hub tests.
        pack_model.main(
            [
                "--exp_dir",
                "exp/train_tiny",
                "--out_dir",
                "packs/llm_by_hub_id",
                "--copy_pretrained",
                "audio_encoder,video_encoder",
                "--pretrained_hub_id",
                "decoder=smop-test/tiny-llm",
            ]
        )
    hub = tmp_path_factory.mktemp("hub_cache")
    add_to_hub_cache(hub, "smop-test/tiny-llm", recipe / "pretrained" / "llm")
    add_to_hub_cache(hub, "smop-test/tiny-avsr", recipe / "packs" / "llm_by_hub_id")
    moved = tmp_path_factory.mktemp("elsewhere") / "tiny_avsr"
    shutil.copytree(recipe / "exp" / "train_tiny" / "pack", moved)
    shutil.rmtree(recipe / "exp" / "train_tiny" / "pack")
    shutil.rmtree(recipe / "pretrained")
    return {"dir": moved, "hub_cache": hub}


def mp4_files(root: Path) -> dict:
    """{utterance id: mp4 path} of the mp4 test set (ids are <speaker>-<video>)."""
    return {f"{p.parent.name}-{p.stem}": p for p in sorted((root / "mini" / "corpus" / "test").glob("*/*.mp4"))}


def landmarks_pattern(root: Path) -> str:
    return str(root / "mini" / "landmarks" / "test" / "{parent}" / "{stem}.npy")


def faceless_landmarks(src: Path, dst: Path) -> Path:
    marks = np.load(src)
    np.save(dst, np.full_like(marks, np.nan))
    return dst


# ------------------------------------------------------------------------------------------ tests
def test_the_pack_holds_what_decoding_needs_and_no_recipe_path(recipe, packed):
    import torch
    from safetensors.torch import load_file

    from smop.inference.pack_reader import read_pack

    pack = packed["dir"]
    for name in (
        "README.md",
        "meta.yaml",
        "config.yaml",
        "decode.yaml",
        "model.safetensors",
        "mouth_crop.yaml",
        "reference_face.npy",
        "images/expert_usage.png",
        "pretrained/decoder/tokenizer.json",
        "pretrained/audio_encoder/preprocessor_config.json",
        "pretrained/video_encoder/tiny_vox_iter5.safetensors",
    ):
        assert (pack / name).is_file(), name
    text = (pack / "config.yaml").read_text()
    assert str(recipe) not in text and "data/train" not in text and "init_param" not in text
    config = yaml.safe_load(text)
    assert config["decoder_conf"]["model_name_or_path"] == "pretrained/decoder"
    assert config["video_encoder_conf"]["checkpoint"] == "pretrained/video_encoder/tiny_vox_iter5.safetensors"
    # only the trained weights, equal to the checkpoint's
    state = torch.load(recipe / "exp" / "train_tiny" / "valid.loss.ave.pth", weights_only=True)
    weights = load_file(pack / "model.safetensors")
    assert weights.keys() == state.keys() and all(torch.equal(weights[k], state[k]) for k in state)
    assert all("lora_" in k or "boundary" in k or k.startswith("projector.") for k in weights)
    # the settings the test sets were decoded with, and the crop settings of the training data
    assert yaml.safe_load((pack / "decode.yaml").read_text()) == {
        "batch_size": 3,
        "beam_size": 2,
        "max_new_tokens_per_second": 10.0,
        "max_new_tokens_min": 10,
        "early_stopping": False,
        "dtype": "float32",
    }
    crop = yaml.safe_load((pack / "mouth_crop.yaml").read_text())
    assert crop["reference_face"] == "reference_face.npy" and crop["roi_size"] == 96 and crop["roi_resize"] is None
    assert (
        crop["reference_face_sha256"]
        == sha256_of(recipe / "mini" / "mean_face.npy")
        == sha256_of(pack / "reference_face.npy")
    )
    meta = yaml.safe_load((pack / "meta.yaml").read_text())
    assert meta["files"]["model.safetensors"] == sha256_of(pack / "model.safetensors")
    assert [p["slot"] for p in meta["pretrained"]] == ["audio_encoder", "video_encoder", "decoder"]
    assert read_pack(str(pack)).config["decoder_conf"]["model_name_or_path"] == str(pack / "pretrained" / "decoder")


def test_the_model_card(packed, recipe):
    card = (packed["dir"] / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["license"] == "apache-2.0" and front["library_name"] == "smop"
    assert "audio-visual-speech-recognition" in front["tags"]
    for needed in (
        "## Model",
        "## Training data",
        "## Results",
        "## Expert usage",
        "## How to use",
        "## Licences",
        "## Citation",
        "|test|clean|7|",
        "![expert usage](images/expert_usage.png)",
        'Speech2Text.from_pretrained("smop-test/tiny-avsr"',
        "smop-transcribe --model smop-test/tiny-avsr",
        "hf upload smop-test/tiny-avsr",
        "Sparse Mixture of Projectors",
        "decoded with beam 2",
        "6 utterances",
        f"reference face sha256 {sha256_of(recipe / 'mini' / 'mean_face.npy')[:12]}",
    ):
        assert needed in card, needed
    # the projector as training built it (model_summary.yaml), not as the config spelt it
    built = yaml.safe_load((recipe / "exp" / "train_tiny" / "model_summary.yaml").read_text())["projector"]
    assert (
        f"| projector | sparse mixture of projectors, {built['layout'].upper()} layout, {built['num_experts']} "
        f"experts, top-{built['top_k']} routing | yes |"
    ) in card


API_SCRIPT = """
import json, sys
from smop import Speech2Text
from smop.data.loaders import MouthNpyReader, Wav16kReader
model, data = sys.argv[1:3]
speech2text = Speech2Text.from_pretrained(model)
wav, video = Wav16kReader(data + "/wav.scp"), MouthNpyReader(data + "/video.scp")
keys = sorted(wav.keys())
hyps = speech2text(speech=[wav[k] for k in keys], video=[video[k] for k in keys])
one = speech2text(speech=wav[keys[0]], video=video[keys[0]])
print(json.dumps({"batch": {k: [h.text, h.score] for k, h in zip(keys, hyps)}, "one": [one.text, one.score]}))
"""


def test_api_in_a_fresh_process_from_another_folder_equals_avsr_inference(recipe, packed, tmp_path):
    import json
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-c", API_SCRIPT, str(packed["dir"]), str(recipe / "data" / "test")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    want = decoded(recipe, "test")
    assert sorted(out["batch"]) == sorted(want) and len(want) == 7
    for key, (text, score) in want.items():
        assert out["batch"][key][0] == text
        assert out["batch"][key][1] == pytest.approx(score, abs=1e-4)
    first = sorted(want)[0]
    assert out["one"][0] == want[first][0]


def test_transcribe_mp4_files_equals_avsr_inference_on_their_prepared_data(recipe, packed, tmp_path):
    """The console script on the mp4 files, with their landmarks: the same hypotheses as decoding the
    data dir that data preparation made of them. A file that cannot be read is named; the others decode."""
    import json
    import subprocess
    import sys

    from smop.bin import transcribe

    script = Path(sys.executable).parent / "smop-transcribe"
    assert script.is_file(), "the console script is missing: run tools/install.sh"
    files = mp4_files(recipe)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    args = [str(script), "--model", str(packed["dir"]), "--landmarks", landmarks_pattern(recipe)]
    res = subprocess.run(
        args + ["--output_format", "json", *map(str, files.values()), str(broken)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 1, res.stderr[-3000:]
    assert f"ERROR {broken}: decoding failed" in res.stderr and "1 of 4 files failed" in res.stderr
    assert "Flash Attention" not in res.stderr  # espnet's notice about an optional package goes to the log
    out = json.loads(res.stdout)
    by_file = {f["file"]: f for f in out["files"]}
    want = decoded(recipe, "test_mp4")
    assert len(want) == 3
    for utt, path in files.items():
        got = by_file[str(path)]
        assert got["text"] == want[utt][0] and got["score"] == pytest.approx(want[utt][1], abs=1e-4)
        assert got["blanked"] == [] and got["duration"] > 1
    assert "MediaError" in by_file[str(broken)]["error"]
    summary = out["summary"]
    assert summary["decoded"] == 3 and summary["failed"] == 1
    assert 0 < summary["seconds_to_model_loaded"] <= summary["seconds_to_first_transcript"] <= summary["seconds_total"]
    # text output (here in this process): one line per file, in the order given
    transcribe.main(args[1:] + ["--output", str(tmp_path / "text"), *map(str, files.values())])
    assert (tmp_path / "text").read_text().splitlines() == [f"{p} {want[u][0]}".rstrip() for u, p in files.items()]


def long_recording(recipe: Path, out: Path, repeat: int, audio_extra: float) -> Path:
    """The mp4 test utterances one after another, ``repeat`` times, with ``audio_extra`` seconds of
    silence after the audio (frames and samples joined as decoded, so that their landmarks, beside
    it as <stem>.npy, match frame for frame)."""
    import subprocess

    import soundfile

    from smop.data.media import read_media

    files = list(mp4_files(recipe).values()) * repeat
    frames, waves = [], []
    for f in files:
        _, video, wave = read_media(f, 25, 16000)
        frames.append(video)
        waves.append(np.pad(wave[: video.shape[0] * 640], (0, max(0, video.shape[0] * 640 - wave.size))))
    frames = np.concatenate(frames)
    soundfile.write(out.with_suffix(".wav"), np.concatenate(waves + [np.zeros(round(audio_extra * 16000))]), 16000)
    _, h, w = frames.shape
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-s",
            f"{w}x{h}",
            "-r",
            "25",
            "-i",
            "-",
            "-i",
            str(out.with_suffix(".wav")),
            "-c:v",
            "libx264",
            "-crf",
            "10",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "pcm_s16le",
            str(out),
        ],
        input=frames.tobytes(),
        check=True,
        timeout=300,
    )
    marks = [np.load(recipe / "mini" / "landmarks" / "test" / f.parent.name / f"{f.stem}.npy") for f in files]
    np.save(out.with_suffix(".npy"), np.concatenate(marks))
    return out


def test_a_long_recording_is_cut_at_pauses_and_its_transcript_joined(recipe, packed, tmp_path):
    """A recording longer than the audio encoder takes (the tiny Whisper: 3 s): transcribe cuts it
    into segments no longer than that, decodes each, and joins them. Audio that lasts a little
    longer than the video of a long recording is cut to it, and said so; much longer is an error."""
    import json

    from smop import Speech2Text
    from smop.bin import transcribe
    from smop.inference.segments import join

    speech2text = Speech2Text.from_pretrained(str(packed["dir"]))
    assert speech2text.segment_frames() == 75 and speech2text.segment_frames(2.0) == 50
    ok = long_recording(recipe, tmp_path / "long.mkv", 4, 0.22)  # about 24 s: 0.22 s is within 1 %
    bad = long_recording(recipe, tmp_path / "drift.mkv", 4, 1.5)
    out = tmp_path / "out.json"
    with pytest.raises(SystemExit, match="1"):
        transcribe.main(
            [
                "--model",
                str(packed["dir"]),
                "--landmarks",
                str(tmp_path / "{stem}.npy"),
                "--output_format",
                "json",
                "--output",
                str(out),
                str(ok),
                str(bad),
            ]
        )
    by_file = {f["file"]: f for f in json.loads(out.read_text())["files"]}
    got, failed = by_file[str(ok)], by_file[str(bad)]
    assert "audio lasts" in failed["error"] and "but video" in failed["error"]
    assert any("audio cut or padded to the video's length" in n for n in got["notes"])
    segments = got["segments"]
    assert len(segments) >= 8 and segments[0]["start"] == 0 and segments[-1]["end"] == got["duration"]
    assert all(a["end"] == b["start"] for a, b in zip(segments, segments[1:]))
    assert all(0 < s["end"] - s["start"] <= 3.0 for s in segments)
    assert got["text"] == join([s["text"] for s in segments])
    assert got["score"] == pytest.approx(sum(s["score"] for s in segments), abs=1e-3)
    # Through the API, each segment's hypothesis is that of decoding the segment alone.
    from smop.inference.media_inputs import read_inputs

    inputs = read_inputs(ok, speech2text.model.modalities, speech2text.mouth_crop, ok.with_suffix(".npy"))
    transcript = speech2text.transcribe(speech=inputs.speech, video=inputs.video)
    assert [(a, b) for a, b, _ in transcript.segments] == [(s["start"], s["end"]) for s in segments]
    assert transcript.text == got["text"]
    a, b, hyp = transcript.segments[1]
    alone = speech2text(
        speech=inputs.speech[round(a * 16000) : round(b * 16000)], video=inputs.video[round(a * 25) : round(b * 25)]
    )
    assert (alone.text, alone.score) == (hyp.text, pytest.approx(hyp.score, abs=1e-5))


def test_a_hub_id_loads_from_the_local_cache(recipe, packed, monkeypatch):
    from huggingface_hub import constants

    from smop import Speech2Text
    from smop.data.loaders import MouthNpyReader, Wav16kReader
    from smop.inference.pack_layout import PackError
    from smop.inference.pack_reader import read_pack

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(packed["hub_cache"]))
    pack = read_pack("smop-test/tiny-avsr")
    assert pack.folder.parts[-3:-1] == ("models--smop-test--tiny-avsr", "snapshots")
    llm = pack.config["decoder_conf"]["model_name_or_path"]
    assert "models--smop-test--tiny-llm/snapshots" in llm  # the pack names its LLM by hub id
    speech2text = Speech2Text.from_pretrained("smop-test/tiny-avsr", batch_size=2)
    data = recipe / "data" / "test"
    wav, video = Wav16kReader(str(data / "wav.scp")), MouthNpyReader(str(data / "video.scp"))
    keys = sorted(wav.keys())[:3]
    hyps = speech2text(speech=[wav[k] for k in keys], video=[video[k] for k in keys])
    want = decoded(recipe, "test")
    assert [h.text for h in hyps] == [want[k][0] for k in keys]
    with pytest.raises(PackError, match="not in the local Hugging Face cache.*hf download smop-test/absent"):
        read_pack("smop-test/absent")


def test_a_missing_modality_is_blanked_as_modality_dropout_blanks_it(recipe, packed, tmp_path):
    """An audio-only input on an AVSR model: the video input is zeros after normalisation, as long
    as the audio, as modality dropout makes it in training; transcribe says so."""
    import json

    import torch

    from smop import Speech2Text
    from smop.bin import transcribe
    from smop.data.loaders import Wav16kReader

    speech2text = Speech2Text.from_pretrained(str(packed["dir"]), beam_size=1)
    data = recipe / "data" / "test"
    wav = Wav16kReader(str(data / "wav.scp"))
    key = sorted(wav.keys())[0]
    hyp = speech2text(speech=wav[key])
    assert hyp.blanked == ("video",)
    frames = wav[key].size // 640
    crop = speech2text.preprocess.crop_size
    ((text, score),) = speech2text.model.recognize(
        torch.from_numpy(wav[key])[None],
        torch.tensor([wav[key].size]),
        torch.zeros(1, frames, crop, crop),
        torch.tensor([frames]),
        **speech2text.settings.search(),
    )[0]
    assert (hyp.text, hyp.score) == (text, pytest.approx(score, abs=1e-5))
    # the prepared wav file (audio only) through transcribe
    out = tmp_path / "out.json"
    transcribe.main(
        [
            "--model",
            str(packed["dir"]),
            "--beam_size",
            "1",
            "--output_format",
            "json",
            "--output",
            str(out),
            wav.table[key],
        ]
    )
    (got,) = json.loads(out.read_text())["files"]
    assert got["blanked"] == ["video"] and "no video stream: decoded with the video blanked" in got["notes"][0]
    assert got["text"] == hyp.text


def test_inputs_are_checked(packed):
    import numpy as np

    from smop import Speech2Text

    speech2text = Speech2Text.from_pretrained(str(packed["dir"]))
    wave, mouths = np.zeros(16000, np.float32), np.zeros((25, 96, 96), np.uint8)
    with pytest.raises(ValueError, match="video must be uint8 grey mouth crops"):
        speech2text(speech=wave, video=mouths.astype(np.float32))
    with pytest.raises(ValueError, match="speech must be a non-empty mono float waveform"):
        speech2text(speech=np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="needs speech and/or video"):
        speech2text(speech=[None], video=[None])
    with pytest.raises(ValueError, match="differ in length"):
        speech2text(speech=[wave, wave], video=[mouths])
    with pytest.raises(ValueError, match="max_seconds must be positive, got 0"):
        speech2text.transcribe(speech=wave, max_seconds=0)
    with pytest.raises(ValueError, match="recording 0: speech lasts 1.00 s but video 2.00 s; .* must be aligned"):
        speech2text.transcribe(speech=wave, video=np.zeros((50, 96, 96), np.uint8))


def test_transcribe_refuses_a_segment_length_that_is_not_positive(packed, tmp_path, capsys):
    from smop.bin import transcribe

    with pytest.raises(SystemExit, match="2"):
        transcribe.main(["--model", str(packed["dir"]), "--max_segment_seconds", "-1", str(tmp_path / "a.mp4")])
    assert "--max_segment_seconds must be positive, got -1.0" in capsys.readouterr().err


def test_packing_names_what_it_cannot_carry(recipe, packed, tmp_path):
    """A pretrained part given by a local path must be copied in or named by hub id; a name that is
    neither a local path nor a hub id of the local cache is refused; a pack needs decoding settings."""
    import shutil as sh

    from smop.bin import pack_model

    exp = tmp_path / "exp"
    sh.copytree(recipe / "exp" / "train_tiny", exp, ignore=sh.ignore_patterns("decode_*", "*.png"))
    sh.copytree(packed["dir"] / "pretrained" / "decoder", tmp_path / "llm")
    config = yaml.safe_load((exp / "config.yaml").read_text())
    args = [
        "--exp_dir",
        str(exp),
        "--out_dir",
        str(tmp_path / "p"),
        "--root",
        str(tmp_path),
        "--decode_config",
        str(packed["dir"] / "decode.yaml"),
        "--pretrained_hub_id",
        "audio_encoder=a/b",
        "--pretrained_hub_id",
        "video_encoder=c/d",
    ]
    for llm, message in (
        (
            "llm",
            "decoder_conf.model_name_or_path is the local path llm, which a pack cannot point "
            "to: .*--copy_pretrained decoder",
        ),
        ("gone/llm", "gone/llm: neither a local path .* nor a hub id in the local Hugging Face cache"),
    ):
        config["decoder_conf"]["model_name_or_path"] = llm
        (exp / "config.yaml").write_text(yaml.safe_dump(config))
        with pytest.raises(SystemExit, match=message):
            pack_model.main(args)
    with pytest.raises(SystemExit, match="not decoded yet"):
        pack_model.main(args[:6])
    assert not (tmp_path / "p").exists() and not list(tmp_path.glob(".p.*"))


def test_the_card_shows_only_the_packed_checkpoints_results(recipe, tmp_path):
    """Results decoded with another checkpoint are refused by name, and not picked when none is named
    (valid.loss.ave.pth, a link to the only epoch's file, counts as that file)."""
    import shutil as sh

    from smop.bin import pack_model

    exp = tmp_path / "exp" / "train_tiny"  # its decode_config.yaml names exp/train_tiny/valid.loss.ave.pth
    sh.copytree(recipe / "exp" / "train_tiny", exp, symlinks=True)
    sh.copy(exp / "1epoch.pth", exp / "other.pth")  # same weights, another checkpoint file
    args = [
        "--exp_dir",
        str(exp),
        "--out_dir",
        str(tmp_path / "p"),
        "--root",
        str(tmp_path),
        "--inference_model",
        "other.pth",
    ]
    with pytest.raises(
        SystemExit,
        match=rf"decode_decode decoded exp/train_tiny/valid.loss.ave.pth, not {exp}/other.pth: "
        r"its results are not this checkpoint's.*--inference_model other.pth",
    ):
        pack_model.main(args + ["--decode_tag", "decode_decode"])
    with pytest.raises(SystemExit, match="other.pth not decoded yet"):
        pack_model.main(args)
    assert not (tmp_path / "p").exists()
    assert ExperimentDir(exp).decoding_of(exp / "1epoch.pth", tmp_path).tag == "decode_decode"


def test_a_pack_without_crop_settings_decodes_crops_but_not_video_files(recipe, packed, tmp_path, caplog, capsys):
    """Training data prepared before smop recorded its crop settings: the pack says so, and
    transcribing a video file names the cause."""
    import shutil as sh

    from smop.bin import pack_model, transcribe

    exp = tmp_path / "exp"
    sh.copytree(recipe / "exp" / "train_tiny", exp, ignore=sh.ignore_patterns("decode_*", "*.png"))
    config = yaml.safe_load((exp / "config.yaml").read_text())
    parts = packed["dir"] / "pretrained"
    config["audio_encoder_conf"]["model_name_or_path"] = str(parts / "audio_encoder")
    config["video_encoder_conf"]["checkpoint"] = str(parts / "video_encoder" / "tiny_vox_iter5.safetensors")
    config["decoder_conf"]["model_name_or_path"] = str(parts / "decoder")
    (exp / "config.yaml").write_text(yaml.safe_dump(config))  # data/train is not under --root: no mouth_crop.yaml
    pack_model.main(
        [
            "--exp_dir",
            str(exp),
            "--out_dir",
            str(tmp_path / "p"),
            "--root",
            str(tmp_path),
            "--decode_config",
            str(packed["dir"] / "decode.yaml"),
            "--copy_pretrained",
            "all",
        ]
    )
    assert "no mouth_crop.yaml" in caplog.text
    assert yaml.safe_load((tmp_path / "p" / "meta.yaml").read_text())["mouth_crop"] is None
    assert "not recorded with the training data" in (tmp_path / "p" / "README.md").read_text()
    mp4 = next(iter(mp4_files(recipe).values()))
    with pytest.raises(SystemExit, match="1"):
        transcribe.main(["--model", str(tmp_path / "p"), "--landmarks", landmarks_pattern(recipe), str(mp4)])
    assert f"ERROR {mp4}: the model reads video but its pack records no mouth-crop settings" in capsys.readouterr().err
