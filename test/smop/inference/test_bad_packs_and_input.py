"""Bad packs and bad input, tried as a hostile user would (the fault battery of issue 24): each is
refused with a one-line error naming the file, or handled, and never costs the other files."""

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import yaml

from smop.inference import pack_layout
from smop.utils.io import sha256_of
from stalling_ffmpeg import running, stalling_ffmpeg
from tiny_pack import build_tiny_pack, write_wave


@pytest.fixture(scope="module")
def audio_pack(tmp_path_factory, pretrained):
    return build_tiny_pack(tmp_path_factory.mktemp("audio_pack"), pretrained, "audio")


def copy_pack(pack: Path, dst: Path) -> Path:
    shutil.copytree(pack, dst)
    for f in dst.rglob("*"):
        f.chmod(0o755 if f.is_dir() else 0o644)
    return dst


def restamp(pack: Path) -> None:
    """meta.yaml's checksums made to match the files again (an edit whose author re-stamped them)."""
    meta = yaml.safe_load((pack / pack_layout.META).read_text())
    meta["files"] = {
        f.relative_to(pack).as_posix(): sha256_of(f)
        for f in sorted(pack.rglob("*"))
        if f.is_file() and f.name != pack_layout.META
    }
    (pack / pack_layout.META).write_text(yaml.safe_dump(meta, sort_keys=False))


def test_pack_layout(audio_pack):
    print(sorted(p.relative_to(audio_pack).as_posix() for p in audio_pack.rglob("*")))


# ------------------------------------------------------------------ a pack never runs its own code
EVIL = """from pathlib import Path
Path({marker!r}).write_text("ran")
"""


@pytest.mark.parametrize("declared_in", ["config.json", "tokenizer_config.json"])
def test_a_pack_whose_llm_declares_custom_code_is_refused_naming_the_file(
    audio_pack, tmp_path, declared_in, capsys, monkeypatch
):
    from smop.bin import transcribe
    from smop.inference.speech2text import Speech2Text
    from smop.utils.pretrained import PretrainedError

    pack = copy_pack(audio_pack, tmp_path / "pack")
    llm = pack / pack_layout.PRETRAINED / "decoder"
    marker = tmp_path / "PWNED"
    (llm / "evil.py").write_text(EVIL.format(marker=str(marker)))
    config = json.loads((llm / declared_in).read_text())
    config["auto_map"] = {
        "AutoConfig": "evil.EvilConfig",
        "AutoModelForCausalLM": "evil.Evil",
        "AutoTokenizer": ["evil.Tok", None],
    }
    (llm / declared_in).write_text(json.dumps(config))
    restamp(pack)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("y\n" * 10))  # a `yes |` pipe
    with pytest.raises(
        PretrainedError, match=f"{llm / declared_in} declares custom code .auto_map., which smop never runs"
    ):
        Speech2Text.from_pretrained(str(pack))
    wave = tmp_path / "a.wav"
    write_wave(wave, 1.0)
    with pytest.raises(SystemExit) as e:
        transcribe.main(["--model", str(pack), str(wave)])
    assert str(llm / declared_in) in str(e.value) and "\n" not in str(e.value)
    assert "custom code? [y/N]" not in capsys.readouterr().out
    assert not marker.exists()


def test_every_model_config_and_tokenizer_load_refuses_remote_code():
    """Each transformers from_pretrained call in smop passes NO_REMOTE_CODE (trust_remote_code=False)."""
    import re

    import smop

    calls = []
    for path in Path(smop.__file__).parent.rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"(\w+)\.from_pretrained\(", text):
            if m.group(1) == "Speech2Text":  # smop's own, in docstrings and the card
                continue
            depth, end = 1, m.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            calls.append(f"{path.name}: {text[m.start() : end]}")
    assert len(calls) >= 6, calls
    assert not [c for c in calls if "**NO_REMOTE_CODE" not in c], calls


def test_damaged_or_added_pretrained_files_are_refused_by_the_packs_checksums(audio_pack, tmp_path):
    from smop.inference.pack_reader import read_pack

    pack = copy_pack(audio_pack, tmp_path / "damaged")
    weights = pack / pack_layout.PRETRAINED / "decoder" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(pack_layout.PackError, match=f"{weights}: does not match the checksum in meta.yaml"):
        read_pack(str(pack))
    pack = copy_pack(audio_pack, tmp_path / "added")
    extra = pack / pack_layout.PRETRAINED / "decoder" / "model.safetensors.index.json"
    extra.write_text("{}")
    with pytest.raises(pack_layout.PackError, match=f"{extra}: not among the files meta.yaml lists"):
        read_pack(str(pack))
    extra.unlink()
    assert read_pack(str(pack)).folder == pack


# ------------------------------------------------------------------ one bad file costs no other
def test_a_too_short_audio_file_is_its_own_error_and_the_others_are_written(audio_pack, tmp_path, capsys):
    from smop.bin import transcribe

    good1, good2 = write_wave(tmp_path / "g1.wav", 1.0), write_wave(tmp_path / "g2.wav", 1.2, seed=1)
    tiny = write_wave(tmp_path / "tiny.wav", 0, samples=80)  # 5 ms
    out = tmp_path / "out.txt"
    with pytest.raises(SystemExit) as e:
        transcribe.main(
            ["--model", str(audio_pack), "--output", str(out), "--num_workers", "0", str(good1), str(tiny), str(good2)]
        )
    assert e.value.code == 1
    lines = out.read_text().splitlines()
    assert [line.split()[0] for line in lines] == [str(good1), str(good2)]
    err = capsys.readouterr().err
    assert f"ERROR {tiny}: 80 samples of speech (5.0 ms); the audio encoder takes at least 201 (12.6 ms)" in err
    assert "Traceback" not in err


def test_a_recording_whose_last_segment_is_a_few_samples_decodes(audio_pack):
    import numpy as np

    from smop.inference.speech2text import Speech2Text

    speech2text = Speech2Text.from_pretrained(str(audio_pack))
    limit = speech2text.segment_frames(1.0)
    rng = np.random.default_rng(0)
    wave = np.zeros(limit * 640 + 100, np.float32)  # noise, then silence up to the limit plus 100 samples
    wave[: (limit - 2) * 640] = 0.1 * rng.standard_normal((limit - 2) * 640)
    transcript = speech2text.transcribe(wave, max_seconds=1.0)
    assert [(a, b) for a, b, _ in transcript.segments][-1] == (limit / 25, (limit + 1) / 25)
    with pytest.raises(ValueError, match="recording 0: 100 samples of speech"):
        speech2text.transcribe(wave[:100])


# ------------------------------------------------------------------ never destroy
def test_an_output_that_is_an_input_or_a_folder_is_refused_before_decoding(tmp_path, capsys):
    from smop.bin import transcribe

    video = write_wave(tmp_path / "a.wav", 0.5)
    before = video.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.wav").symlink_to(video)
    os.link(video, tmp_path / "hard.wav")
    cases = {
        str(video): f"--output {video} is the input {video}; writing the transcripts there would overwrite it",
        str(tmp_path / "sub" / ".." / "a.wav"): "would overwrite it",
        str(tmp_path / "link.wav"): "would overwrite it",
        str(tmp_path / "hard.wav"): "would overwrite it",
        str(tmp_path / "sub"): f"--output {tmp_path / 'sub'} is a folder; name the file to write the transcripts to",
    }
    for output, message in cases.items():
        with pytest.raises(SystemExit) as e:  # the model named does not exist: refused before loading it
            transcribe.main(["--model", str(tmp_path / "no_pack"), "--output", output, str(video)])
        assert message in str(e.value), output
    assert video.read_bytes() == before and sorted(p.name for p in (tmp_path / "sub").iterdir()) == []


# ------------------------------------------------------------------ never invent
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_samples_are_the_files_named_error(audio_pack, tmp_path, capsys, bad):
    import numpy as np
    import soundfile

    from smop.bin import transcribe
    from smop.inference.speech2text import Speech2Text

    wave = np.full(16000, bad, np.float32)
    wave[::2] = 0.1
    broken = tmp_path / "broken.wav"
    soundfile.write(broken, wave, 16000, subtype="FLOAT")
    good = write_wave(tmp_path / "good.wav", 1.0)
    with pytest.raises(SystemExit) as e:
        transcribe.main(["--model", str(audio_pack), "--num_workers", "0", str(broken), str(good)])
    assert e.value.code == 1
    out, err = capsys.readouterr()
    assert f"ERROR {broken}: the audio holds NaN or infinite samples" in err
    assert out.startswith(str(good)) and str(broken) not in out
    speech2text = Speech2Text.from_pretrained(str(audio_pack))
    with pytest.raises(ValueError, match="utterance 0: speech holds NaN or infinite samples"):
        speech2text(speech=wave)
    with pytest.raises(ValueError, match="recording 0: speech holds NaN or infinite samples"):
        speech2text.transcribe(wave)


def test_a_device_this_machine_lacks_is_one_line(audio_pack, capsys):
    import torch

    from smop.bin import transcribe

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = f"cuda:{count}"  # one more than there is
    with pytest.raises(SystemExit) as e:
        transcribe.main(["--model", str(audio_pack), "--device", device, "x.wav"])
    assert str(e.value).startswith(f"smop-transcribe: device '{device}': this machine has ") and "\n" not in str(
        e.value
    )
    with pytest.raises(SystemExit) as e:
        transcribe.main(["--model", str(audio_pack), "--device", "gpu", "x.wav"])
    assert "device 'gpu': not a torch device" in str(e.value)


def test_messages_never_suggest_unpickling(tmp_path):
    import numpy as np
    import torch

    from smop.data.landmarks import LandmarkError, load_landmarks
    from smop.data.loaders import MouthNpyReader
    from smop.data.mouth_roi import ReferenceFaceError, load_reference_face
    from smop.utils.checkpoint import load_model_state

    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (tmp_path / "video.scp").write_text(f"u1 {pickled}\n")
    safe = "holds pickled Python objects, which smop never loads"
    for call, error in (
        (lambda: load_landmarks(str(pickled)), LandmarkError),
        (lambda: load_reference_face(pickled), ReferenceFaceError),
        (lambda: MouthNpyReader(str(tmp_path / "video.scp"))["u1"], ValueError),
    ):
        with pytest.raises(error) as e:
            call()
        assert str(pickled) in str(e.value) and safe in str(e.value) and "allow_pickle" not in str(e.value)
    checkpoint = tmp_path / "model.pth"
    torch.save({"w": torch.zeros(1), "note": Path("x")}, checkpoint)
    with pytest.raises(RuntimeError) as e:
        load_model_state(checkpoint)
    assert f"{checkpoint}: refused to load: it holds pickled Python objects" in str(e.value)
    assert "weights_only" not in str(e.value)


# ------------------------------------------------------------------ no hang, no leftovers
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_run_leaves_no_ffmpeg_and_no_temporary_file(audio_pack, tmp_path, signum):
    """Stopped while ffmpeg hangs on an input: the run ends at once, its ffmpeg killed, its
    temporary audio file and the temporary file beside --output removed."""
    import subprocess
    import sys
    import time

    fake = stalling_ffmpeg(tmp_path / "bin")
    temp, outdir = tmp_path / "tmp", tmp_path / "out"
    temp.mkdir()
    outdir.mkdir()
    env = {
        **os.environ,
        "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
        "TMPDIR": str(temp),
        "PYTHONPATH": str(Path(__file__).parents[3]),
    }
    wave = write_wave(tmp_path / "a.wav", 1.0)
    cmd = [sys.executable, "-m", "smop.bin.transcribe", "--model", str(audio_pack), "--output", str(outdir / "t.txt")]
    # Started as from a terminal, where Ctrl-C interrupts: a process whose SIGINT is ignored (a
    # background job of a script, or after a test left it so) passes that on to its children.
    sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen([*cmd, str(wave)], env=env, stderr=subprocess.PIPE, text=True, preexec_fn=sigint)
    try:
        deadline = time.monotonic() + 120
        while not (fake / "pid").is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (fake / "pid").is_file(), proc.stderr.read() if proc.poll() is not None else "ffmpeg never started"
        time.sleep(0.5)
        assert list(temp.glob("*.f32")) and list(outdir.glob(".t.txt.*.tmp"))  # what must not be left behind
        start = time.monotonic()
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 128 + signum
        assert time.monotonic() - start < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"stopped by {signal.Signals(signum).name}" in proc.stderr.read()
    time.sleep(0.2)
    assert not running(int((fake / "pid").read_text()))
    assert not list(temp.glob("*.f32")) and not list(outdir.iterdir())


# ------------------------------------------------------------------ damaged packs: one line naming the file
def _damage_header(pack: Path, name: str) -> str:
    path = pack / name
    data = bytearray(path.read_bytes())
    data[:8] = b"\xff" * 8  # the header length: "header too large"
    path.write_bytes(bytes(data))
    return f"{path}: damaged weights file (SafetensorError: Error while deserializing header: header too large)"


def _drop_modality(pack: Path) -> str:
    config = yaml.safe_load((pack / pack_layout.CONFIG).read_text())
    config.pop("modality")
    (pack / pack_layout.CONFIG).write_text(yaml.safe_dump(config))
    return f"{pack / pack_layout.CONFIG}: no 'modality' key, which every packed config has (damaged or edited)"


def _misspell_projector(pack: Path) -> str:
    config = yaml.safe_load((pack / pack_layout.CONFIG).read_text())
    config["projector"] = "smopp"
    (pack / pack_layout.CONFIG).write_text(yaml.safe_dump(config))
    return f"{pack / pack_layout.CONFIG}: 1 problem(s) in the configuration: projector: 'smopp' is not one of"


def _drop_tokenizer(pack: Path) -> str:
    llm = pack / pack_layout.PRETRAINED / "decoder"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (llm / name).unlink()
    return f"{llm} holds no tokenizer (tokenizer.json or tokenizer.model); copy the LLM's tokenizer files into it"


def _other_weights(pack: Path) -> str:
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(str(pack / pack_layout.WEIGHTS))
    state[sorted(state)[0]] = torch.zeros(3, 3)  # another model's shape
    save_file(state, str(pack / pack_layout.WEIGHTS))
    return f"{pack / pack_layout.WEIGHTS}: these weights do not fit the model its config builds (Error(s) in loading"


@pytest.mark.parametrize(
    "damage",
    [
        lambda pack: _damage_header(pack, pack_layout.WEIGHTS),
        lambda pack: _damage_header(pack, "pretrained/decoder/model.safetensors"),
        lambda pack: _damage_header(pack, "pretrained/audio_encoder/model.safetensors"),
        _drop_modality,
        _misspell_projector,
        _drop_tokenizer,
        _other_weights,
    ],
    ids=["weights", "llm_weights", "whisper_weights", "config_key", "config_value", "tokenizer", "other_model"],
)
def test_a_damaged_pack_whose_checksums_were_restamped_is_one_line_naming_the_file(audio_pack, tmp_path, damage):
    from smop.bin import transcribe

    pack = copy_pack(audio_pack, tmp_path / "pack")
    message = damage(pack)
    restamp(pack)
    with pytest.raises(SystemExit) as e:
        transcribe.main(["--model", str(pack), str(write_wave(tmp_path / "a.wav", 0.5))])
    assert str(e.value).startswith(f"smop-transcribe: {message}") or message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------ never invent
def test_silence_is_not_decoded_but_noted(audio_pack, tmp_path, capsys):
    import numpy as np
    import soundfile

    from smop.bin import transcribe
    from smop.inference.speech2text import Speech2Text

    speech2text = Speech2Text.from_pretrained(str(audio_pack))
    transcript = speech2text.transcribe(np.zeros(3 * 16000, np.float32), max_seconds=1.0)
    assert transcript.text == "" and transcript.score == 0.0 and len(transcript.segments) == 3
    assert transcript.notes == tuple(
        f"recording 0 [{a:.2f}-{b:.2f} s]: no speech (silent audio): not decoded" for a, b in ((0, 1), (1, 2), (2, 3))
    )
    # A recording that speaks, then falls silent: only the segments that hold speech are decoded.
    tone = soundfile.read(write_wave(tmp_path / "tone.wav", 0.9))[0].astype(np.float32)
    spoken = speech2text.transcribe(np.concatenate([tone, np.zeros(2 * 16000, np.float32)]), max_seconds=1.0)
    assert [h.text == "" for _, _, h in spoken.segments] == [False, True, True]
    assert spoken.segments[0][2].score != 0.0 and spoken.text == spoken.segments[0][2].text and len(spoken.notes) == 2
    # Digital silence and a near-silent hum (-70 dBFS) alike; the file is named, the run succeeds.
    quiet = tmp_path / "quiet.wav"
    soundfile.write(quiet, (10 ** (-70 / 20) * np.sqrt(2) * np.sin(np.arange(32000) / 5)).astype(np.float32), 16000)
    transcribe.main(["--model", str(audio_pack), "--num_workers", "0", str(quiet), str(tmp_path / "tone.wav")])
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == str(quiet) and out.splitlines()[1].startswith(f"{tmp_path / 'tone.wav'} ")
    assert f"NOTE {quiet}: no speech (silent audio): not decoded" in err


# ------------------------------------------------------------------ the API checks what it is given
@pytest.fixture(scope="module")
def av_pack(tmp_path_factory, pretrained):
    return build_tiny_pack(tmp_path_factory.mktemp("av_pack"), pretrained, "audiovisual")


def test_crops_of_another_size_and_unaligned_inputs_are_refused(av_pack):
    import numpy as np

    from smop.inference.speech2text import Speech2Text

    speech2text = Speech2Text.from_pretrained(str(av_pack))
    side = speech2text.mouth_crop.side
    wave = np.zeros(16000, np.float32)
    hyp = speech2text(speech=wave, video=np.zeros((25, side, side), np.uint8))
    assert hyp.blanked == ()
    with pytest.raises(ValueError, match=f"utterance 0: mouth crops of {2 * side}x{2 * side}, but this model was "):
        speech2text(speech=wave, video=np.zeros((25, 2 * side, 2 * side), np.uint8))
    with pytest.raises(ValueError, match="utterance 1: speech lasts 1.00 s but video 2.00 s"):
        speech2text(
            speech=[wave, wave], video=[np.zeros((25, side, side), np.uint8)] + [np.zeros((50, side, side), np.uint8)]
        )
