"""smop-demo with an elastic model (issue 21): the page offers the modalities and rate pairs the model
was trained for, each decoded as Speech2Text decodes that cell (nothing reloaded), and a cell it was
not trained for is a one-line message; a model of one rate pair offers no rate."""

import re

import pytest

from demo_inputs import demo_inputs
from face_clips import require_landmarks_extra
from smop.demo.session import AUDIO_ONLY, AUDIO_VISUAL, MODALITY, VIDEO_ONLY, DemoSession, Limits
from smop.inference.speech2text import Speech2Text
from tiny_pack import build_tiny_pack

GRID = {"modalities": ["audiovisual", "audio", "video"], "rates": {"audio": [4, 8], "video": [2, 5]}}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, pretrained):
    require_landmarks_extra()  # dlib finds the face of the mp4
    root = tmp_path_factory.mktemp("demo")
    files = demo_inputs(root, pretrained)
    files["elastic"] = build_tiny_pack(
        root / "elastic_pack",
        pretrained,
        "audiovisual",
        audio_compressor_conf={"rates": GRID["rates"]["audio"]},
        video_compressor_conf={"rates": GRID["rates"]["video"]},
        model_conf={"modalities": GRID["modalities"]},
    )
    return files


@pytest.fixture(scope="module")
def session(inputs):
    return DemoSession(Speech2Text.from_pretrained(str(inputs["elastic"])), Limits(max_mb=5, max_seconds=10))


def test_an_elastic_model_offers_its_modalities_and_rate_pairs(session):
    assert session.elastic
    assert session.modes == [AUDIO_VISUAL, AUDIO_ONLY, VIDEO_ONLY]
    assert session.rates(AUDIO_VISUAL) == [
        "audio 4 / video 2 (12.5 + 12.5 tokens/s)",
        "audio 4 / video 5 (12.5 + 5 tokens/s)",
        "audio 8 / video 2 (6.25 + 12.5 tokens/s)",
        "audio 8 / video 5 (6.25 + 5 tokens/s)",
    ]
    assert session.rates(AUDIO_ONLY) == ["audio 4 (12.5 tokens/s)", "audio 8 (6.25 tokens/s)"]
    assert session.rates(VIDEO_ONLY) == ["video 2 (12.5 tokens/s)", "video 5 (5 tokens/s)"]


def test_a_fixed_model_offers_blanking_and_no_rate(inputs):
    fixed = DemoSession(Speech2Text.from_pretrained(str(inputs["pack"])))
    assert not fixed.elastic
    assert fixed.modes == [AUDIO_VISUAL, AUDIO_ONLY, VIDEO_ONLY]
    assert all(fixed.rates(mode) == [] for mode in fixed.modes)


def test_every_cell_gives_speech2texts_transcript_without_reloading(session, inputs, monkeypatch):
    from smop.inference import pack_reader

    mp4 = str(inputs["mp4"])
    # the reference: the pack loaded at each cell, decoding the file as the demo reads it
    want = {}
    for mode in session.modes:
        for rate in session.rates(mode):
            pair = {m: int(r) for m, r in re.findall(r"(audio|video) (\d+)", rate)}
            reference = Speech2Text.from_pretrained(
                str(inputs["elastic"]),
                modality=MODALITY[mode],
                audio_rate=pair.get("audio"),
                video_rate=pair.get("video"),
            )
            want[mode, rate] = DemoSession(reference).transcribe(mp4, mode).text
    assert len(want) == 8 and all(want.values())
    assert len(set(want.values())) > 1  # the cells decode differently: the choice reaches the model

    def no_reload(*args, **kwargs):
        raise AssertionError("the demo reloaded the model")

    monkeypatch.setattr(pack_reader, "read_pack", no_reload)
    assert session.speech2text.at(modality="video", video_rate=5).model is session.speech2text.model
    for (mode, rate), text in want.items():
        result = session.transcribe(mp4, mode, rate)
        assert result.error == "" and result.text == text, (mode, rate)
        assert result.cell == f"{MODALITY[mode]} at {rate}"  # the page says which cell decoded it
        assert result.notes == []  # a modality of the model: nothing blanked
    # no rate: the model's default pair
    assert session.transcribe(mp4, AUDIO_ONLY).text == want[AUDIO_ONLY, session.rates(AUDIO_ONLY)[0]]


def test_an_untrained_cell_is_a_message(session, inputs):
    mp4 = str(inputs["mp4"])
    result = session.transcribe(mp4, AUDIO_VISUAL, "audio 3 / video 2 (16.67 + 12.5 tokens/s)")
    assert result.text == "" and result.error == "audio_rate 3: this model was trained at audio rates 4, 8 only"
    result = session.transcribe(mp4, AUDIO_ONLY, "fast")
    assert result.error == "rate 'fast': choose one of audio 4 (12.5 tokens/s), audio 8 (6.25 tokens/s)"
    assert session.transcribe(mp4, VIDEO_ONLY, "video 5 (5 tokens/s)").text  # still serving
