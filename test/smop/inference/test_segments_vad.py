"""The voice activity rules that find where long recordings are cut: silero-vad finds the pauses
between utterances of real (synthesized) speech, the choice of rule reaches the cutter from
Speech2Text and smop-transcribe, and a missing silero-vad is a one-line error naming the extra."""

import json
import os
import shutil
import socket
import sys

import numpy as np
import pytest

from smop.data.inputs import SAMPLES_PER_FRAME
from smop.inference import segments
from tiny_pack import build_tiny_pack, write_wave

try:
    import silero_vad  # noqa: F401

    HAVE_SILERO = True
except ImportError:
    HAVE_SILERO = False
IN_CI = os.environ.get("CI") == "true"  # CI installs silero-vad, espeak-ng and sox: there nothing skips
needs_silero = pytest.mark.skipif(
    not HAVE_SILERO and not IN_CI, reason="silero-vad is not installed (tools/install.sh --extra vad)"
)
PAUSE_FRAMES = 8  # 320 ms of silence between utterances, besides the 2 x 120 ms each keeps
SENTENCES = ("place red by x four again", "set blue with d eight please", "lay green at k zero now")


@pytest.fixture(scope="module")
def joined():
    """Three utterances spoken by espeak-ng (as the mini corpus makes them: 120 ms of silence kept
    around each), one after another with PAUSE s of silence between: the waveform, and the frames
    (40 ms) in the middle of each pause between utterances."""
    if not IN_CI and (shutil.which("espeak-ng") is None or shutil.which("sox") is None):
        pytest.skip("espeak-ng and sox make the speech (tools/install.sh installs them; CI has them)")
    from smop.mini.tts import Voice, synthesize

    waves = []
    for text in SENTENCES:
        w = synthesize(text, Voice("en-us", "m1"), 160, 50, 3)
        waves.append(np.pad(w, (0, -w.size % SAMPLES_PER_FRAME + PAUSE_FRAMES * SAMPLES_PER_FRAME)))
    ends = np.cumsum([w.size // SAMPLES_PER_FRAME for w in waves])[:-1]
    return np.concatenate(waves), ends - PAUSE_FRAMES // 2


@needs_silero
def test_silero_finds_the_pauses_between_utterances_and_the_cuts_fall_there(joined):
    wave, bounds = joined
    frames = wave.size // SAMPLES_PER_FRAME
    speech = segments.frame_speech(wave, frames, "silero")
    assert speech.pause.shape == speech.level.shape == (frames,)
    assert 0 <= speech.level.min() and speech.level.max() <= 1
    runs = segments.pause_runs(speech.pause)
    for b in bounds:  # a pause of 120 ms or more at each boundary between utterances
        assert any(a <= b <= e and e - a >= segments.MIN_PAUSE_FRAMES for a, e in runs), (b, runs)
    # most of each utterance is speech to it
    assert speech.pause.mean() < 0.4
    # Segments a little longer than an utterance: each cut falls in the pause between two, 40 ms
    # before speech resumes.
    limit = int(max(np.diff([0, *bounds, frames]))) + 10
    cuts = segments.cut_points(frames, limit, speech)
    gaps = [next((a, e) for a, e in runs if a <= b <= e) for b in bounds]
    assert cuts[1:-1] == [e - segments.LEAD_FRAMES for _, e in gaps], (cuts, gaps)


def test_the_energy_rule_is_the_default_and_an_unknown_rule_is_named(joined):
    wave, bounds = joined
    frames = wave.size // SAMPLES_PER_FRAME
    assert segments.DEFAULT_VAD == "energy"
    energy = segments.frame_speech(wave, frames)
    assert np.array_equal(energy.pause, segments.pauses(segments.frame_energy(wave, frames)))
    with pytest.raises(ValueError, match="vad must be one of energy, silero, got 'webrtc'"):
        segments.split(wave, None, 50, vad="webrtc")


@needs_silero
def test_silero_loads_from_its_package_without_the_network_and_keeps_torch_threads(monkeypatch):
    import torch

    def refused(*args, **kwargs):
        raise AssertionError("silero-vad tried the network")

    monkeypatch.setattr(socket.socket, "connect", refused)
    monkeypatch.setattr(torch.hub, "load", refused)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refused)
    segments.silero_model.cache_clear()
    for name in [m for m in sys.modules if m.split(".")[0] == "silero_vad"]:  # imported afresh: that sets
        monkeypatch.delitem(sys.modules, name)  # torch to 1 thread
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        model = segments.silero_model()
        assert torch.get_num_threads() == threads + 1
    finally:
        torch.set_num_threads(threads)
    quiet = segments.silero_probabilities(np.zeros(10 * SAMPLES_PER_FRAME, np.float32), 10)
    assert quiet.shape == (10,) and quiet.max() < segments.SILERO_PAUSE
    assert model is segments.silero_model()  # loaded once


def test_a_missing_silero_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    from smop.bin import transcribe
    from smop.inference.speech2text import Speech2Text

    monkeypatch.setitem(sys.modules, "silero_vad", None)  # import fails as if it were not installed
    segments.silero_model.cache_clear()
    msg = "vad 'silero' needs the silero-vad package: pip install 'smop\\[vad\\]' \\(or tools/install.sh --extra vad\\)"
    with pytest.raises(ImportError, match=msg):
        segments.split(np.zeros(16000 * 5, np.float32), None, 50, vad="silero")
    with pytest.raises(ImportError, match=msg):  # before any pack is read
        Speech2Text.from_pretrained(str(tmp_path / "no_pack"), vad="silero")
    with pytest.raises(SystemExit) as e:
        transcribe.main(["--model", str(tmp_path / "no_pack"), "--vad", "silero", str(tmp_path / "a.wav")])
    assert str(e.value) == (
        "smop-transcribe: --vad silero: vad 'silero' needs the silero-vad package: pip install 'smop[vad]' "
        "(or tools/install.sh --extra vad)"
    )
    segments.silero_model.cache_clear()


@pytest.fixture(scope="module")
def audio_pack(tmp_path_factory, pretrained):
    return build_tiny_pack(tmp_path_factory.mktemp("vad_pack"), pretrained, "audio")


@pytest.fixture
def rules_used(monkeypatch):
    """The rules the cutter was asked for, in order (segments.frame_speech, run as it is)."""
    used = []
    real = segments.frame_speech

    def spy(speech, frames, vad=segments.DEFAULT_VAD):
        used.append(vad)
        return real(speech, frames, vad)

    monkeypatch.setattr(segments, "frame_speech", spy)
    return used


@needs_silero
def test_the_choice_reaches_the_cutter_from_speech2text_and_smop_transcribe(audio_pack, tmp_path, rules_used):
    from smop.bin import transcribe
    from smop.inference.speech2text import Speech2Text

    wave_file = write_wave(tmp_path / "long.wav", 7.0)  # longer than the tiny Whisper's 3 s
    wave = __import__("soundfile").read(wave_file, dtype="float32")[0]
    default = Speech2Text.from_pretrained(str(audio_pack))
    assert default.vad == "energy"
    default.transcribe(speech=wave)
    silero = Speech2Text.from_pretrained(str(audio_pack), vad="silero")
    assert silero.vad == "silero"
    got = silero.transcribe(speech=wave)
    assert len(got.segments) >= 3
    assert rules_used == ["energy", "silero"]
    out = tmp_path / "out.json"
    transcribe.main(
        ["--model", str(audio_pack), "--vad", "silero", "--output_format", "json", "--output", str(out), str(wave_file)]
    )
    assert rules_used[-1] == "silero" and len(rules_used) == 3
    report = json.loads(out.read_text())
    assert report["vad"] == "silero"
    assert [(s["start"], s["end"]) for s in report["files"][0]["segments"]] == [(a, b) for a, b, _ in got.segments]
    with pytest.raises(SystemExit):
        transcribe.main(["--model", str(audio_pack), "--vad", "webrtc", str(wave_file)])
