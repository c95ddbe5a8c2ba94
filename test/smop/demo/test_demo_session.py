"""smop-demo's logic without a browser: what a request gives (the transcript smop-transcribe gives,
segments, crops, expert usage, notes, timings), and every refusal as a one-line message after
which the session goes on serving."""

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from demo_inputs import demo_inputs, transcribe_json
from face_clips import require_landmarks_extra
from smop.demo.session import (
    AUDIO_ONLY,
    AUDIO_VISUAL,
    READER_THREADS,
    STRIP_GAP,
    STRIP_SIDE,
    VIDEO_ONLY,
    DemoSession,
    Limits,
    rate_label,
)
from smop.inference.media_inputs import read_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, pretrained):
    require_landmarks_extra()  # dlib finds the face of the mp4
    return demo_inputs(tmp_path_factory.mktemp("demo"), pretrained)


@pytest.fixture(scope="module")
def speech2text(inputs):
    from smop.inference.speech2text import Speech2Text

    return Speech2Text.from_pretrained(str(inputs["pack"]))


@pytest.fixture(scope="module")
def want(inputs, tmp_path_factory):
    """smop-transcribe's records of the mp4 and the wav."""
    return transcribe_json(inputs["pack"], [inputs["mp4"], inputs["wav"]], tmp_path_factory.mktemp("ref") / "want.json")


@pytest.fixture
def session(speech2text):
    return DemoSession(speech2text, Limits(max_mb=5, max_seconds=10))


def test_an_mp4_gives_smop_transcribes_transcript_with_crops_usage_and_timings(session, inputs, want):
    want = want["talk.mp4"]
    result = session.transcribe(str(inputs["mp4"]), AUDIO_VISUAL)
    assert result.error == ""
    assert want["text"] and result.text == want["text"]
    rates = session.speech2text.rates  # a fixed model's one rate pair, said on the page too
    assert result.cell == f"audiovisual at {rate_label(rates)}" and set(rates) == {"audio", "video"}
    assert result.rows() == [[s["start"], s["end"], s["text"], s["score"]] for s in want["segments"]]
    assert result.notes == want["notes"] == []
    assert result.duration == want["duration"] == 1.6
    # 8 of the 40 frames, each the model's 88x88 centre crop, side by side
    assert result.crops.shape == (STRIP_SIDE, 8 * STRIP_SIDE + 7 * STRIP_GAP) and result.crops.dtype == np.uint8
    assert result.crops[:, :STRIP_SIDE].std() > 5  # a mouth, not a blank
    # DEDR, 4 experts, top-2: every token of each modality counted once per choice
    assert set(result.usage) == {"audio", "video"}
    for ranks in result.usage.values():
        assert set(ranks) == {"top1", "top2"} and len(ranks["top1"]) == 4
        assert sum(ranks["top1"]) == sum(ranks["top2"]) > 0
    assert set(result.seconds) == {"read", "wait", "decode", "total"}
    assert "1.60 s of media" in result.timings()


def test_a_wav_given_to_an_av_model_is_decoded_with_the_video_blanked_and_a_note(session, inputs, want):
    want = want["tone.wav"]
    result = session.transcribe(str(inputs["wav"]), AUDIO_VISUAL)
    assert result.error == "" and result.text == want["text"] != ""
    assert result.notes == [
        "tone.wav: no video stream: decoded with the video blanked, as modality dropout blanks it in training"
    ]
    assert result.crops is None


def test_one_modality_of_an_av_model_by_choice(session, inputs):
    assert session.modes == [AUDIO_VISUAL, AUDIO_ONLY, VIDEO_ONLY]
    audio = session.transcribe(str(inputs["mp4"]), AUDIO_ONLY)
    assert audio.error == "" and audio.crops is None
    assert audio.notes == [
        "audio only: decoded with the video blanked by choice, as modality dropout blanks it in training"
    ]
    video = session.transcribe(str(inputs["mp4"]), VIDEO_ONLY)
    assert video.error == "" and video.crops is not None
    assert video.notes == [
        "video only (lip reading): decoded with the audio blanked by choice, as modality dropout blanks it in training"
    ]
    lacking = session.transcribe(str(inputs["wav"]), VIDEO_ONLY)
    assert lacking.error == (
        "tone.wav: no video stream: the chosen mode reads video; give a file with video, "
        "or choose another mode (audio only)"
    )


def test_no_face(session, inputs):
    blanked = session.transcribe(str(inputs["faceless"]), AUDIO_VISUAL)
    assert blanked.error == "" and blanked.crops is None
    (note,) = blanked.notes
    assert note.startswith("faceless.mp4: no usable face (") and note.endswith(
        "decoded with the video blanked, as modality dropout blanks it in training"
    )
    refused = session.transcribe(str(inputs["faceless"]), VIDEO_ONLY)
    assert refused.error.startswith("faceless.mp4: no usable face (") and refused.text == ""


def test_a_long_recording_gives_smop_transcribes_segments(speech2text, inputs, tmp_path):
    (want,) = transcribe_json(
        inputs["pack"], [inputs["wav"]], tmp_path / "ref.json", "--max_segment_seconds", "0.6"
    ).values()
    session = DemoSession(speech2text, Limits(), max_segment_seconds=0.6)
    result = session.transcribe(str(inputs["wav"]), AUDIO_VISUAL)
    rows = result.rows()
    assert len(rows) >= 3 and rows[0][0] == 0.0 and rows[-1][1] == 1.52
    assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
    assert rows == [[s["start"], s["end"], s["text"], s["score"]] for s in want["segments"]]
    assert result.text == want["text"]


def test_refusals_are_messages_and_the_next_request_is_served(session, inputs, tmp_path, speech2text):
    def refused(upload, mode=AUDIO_VISUAL, on=session):
        result = on.transcribe(upload, mode)
        assert result.text == "" and "\n" not in result.error
        return result.error

    assert refused(str(inputs["broken"])).startswith("broken.mp4: ")
    assert str(inputs["broken"].parent) not in refused(str(inputs["broken"]))  # no server path on the page
    assert refused(None) == "no file: upload a video or audio file, or record one, then press Transcribe"
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(6_000_000))
    assert refused(str(big)) == "big.mp4: 6.0 MB; this demo takes files up to 5 MB"
    short = DemoSession(speech2text, Limits(max_mb=5, max_seconds=1.0))
    assert refused(str(inputs["mp4"]), on=short) == "talk.mp4: 1.6 s long; this demo takes up to 1 s"  # the header's
    assert refused(str(inputs["webm"]), on=short) == "recorded.webm: 1.6 s long; this demo takes up to 1 s"  # decoded
    assert refused(str(inputs["mp4"]), "sign language").startswith("this audiovisual model has no 'sign language' mode")
    assert (
        refused(str(tmp_path / "gone.mp4"))
        == "gone.mp4: the upload is gone (uploads are kept 10 minutes); upload it again"
    )
    # the page takes only gradio's copies of uploads
    uploads = DemoSession(speech2text, Limits(), uploads=tmp_path / "uploads")
    assert refused(str(inputs["mp4"]), on=uploads) == "talk.mp4: not a file uploaded to this page"
    assert (
        refused(str(tmp_path / "uploads" / ".." / "big.mp4"), on=uploads) == "big.mp4: not a file uploaded to this page"
    )
    assert session.transcribe(str(inputs["mp4"]), AUDIO_VISUAL).text  # still serving


def test_a_browser_recording_without_duration_in_its_header_is_transcribed(session, inputs):
    from smop.data.media import header_seconds

    assert header_seconds(inputs["webm"]) is None and header_seconds(inputs["mp4"]) == 1.6
    result = session.transcribe(str(inputs["webm"]), AUDIO_VISUAL)
    assert result.error == "" and result.text and result.crops is not None


def test_concurrent_requests_each_get_their_own_transcript(session, inputs, monkeypatch):
    from smop.demo import session as module

    files = [inputs["mp4"], inputs["wav"]] * 3
    alone = {f: session.transcribe(str(f), AUDIO_VISUAL) for f in files[:2]}
    readers = set()

    def reading(*args, **kwargs):  # the real reading, noting the thread it runs in
        readers.add(threading.current_thread().name)
        return read_inputs(*args, **kwargs)

    monkeypatch.setattr(module, "read_inputs", reading)
    results = [None] * len(files)

    def one(i):
        results[i] = session.transcribe(str(files[i]), AUDIO_VISUAL)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [r.text for r in results] == [alone[f].text for f in files]
    assert [r.usage for r in results] == [alone[f].usage for f in files]  # each request's own routing counts
    # read in the session's two threads (a dlib detector each), whichever threads asked
    assert 1 <= len(readers) <= 2 and all(name.startswith(READER_THREADS) for name in readers), readers


def test_the_command_checks_its_options_and_removes_its_folder(capsys):
    from smop.bin import demo

    with pytest.raises(SystemExit):
        demo.main(["--model", "x", "--max_mb", "0"])
    assert "--max_mb must be positive, got 0.0" in capsys.readouterr().err
    before = os.environ.get("GRADIO_TEMP_DIR")
    with demo.app_folder() as folder:
        assert os.environ["GRADIO_TEMP_DIR"] == str(folder) and os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
        (folder / "upload").mkdir()
        (folder / "upload" / "a.mp4").write_bytes(b"x")
    assert not Path(folder).exists() and os.environ.get("GRADIO_TEMP_DIR") == before
