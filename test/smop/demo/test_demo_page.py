"""smop-demo's page in a real browser: Debian's chromium driven by playwright (the demo extra,
``smop.demo.browser``), the app served in this process on 127.0.0.1. The browser resolves no host
but loopback, and every request it makes elsewhere is aborted and fails the test.

Skipped, with the reason, where gradio, playwright or chromium is missing, except in CI (CI=true),
which installs them (tools/install.sh --extra demo) and so fails instead.
"""

import contextlib
import os
import shutil
import socket
from pathlib import Path

import pytest

from demo_inputs import demo_inputs, transcribe_json
from face_clips import require_landmarks_extra
from smop.demo.browser import launch_chromium, open_page, transcribe, upload


def require_browser():
    """The skip reason where the demo extra or chromium is missing; in CI, a failure instead."""
    missing = [m for m in ("gradio", "playwright") if not _importable(m)]
    if shutil.which("chromium") is None:
        missing.append("chromium (Debian's package)")
    if missing:
        why = f"needs {', '.join(missing)}: tools/install.sh --extra demo (as root it installs chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI installs the demo extra, yet: {why}")
        pytest.skip(why)


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def listening(port: int) -> list:
    """The local addresses (as /proc/net/tcp{,6} write them) of the sockets listening on ``port``."""
    rows = [line.split() for t in ("tcp", "tcp6") for line in Path(f"/proc/net/{t}").read_text().splitlines()[1:]]
    return [r[1] for r in rows if r[3] == "0A" and int(r[1].rsplit(":", 1)[1], 16) == port]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, request):
    require_browser()  # before the tiny models are made
    require_landmarks_extra()
    root = tmp_path_factory.mktemp("demo_page")
    files = demo_inputs(root, request.getfixturevalue("pretrained"))
    want = transcribe_json(files["pack"], [files["mp4"], files["wav"]], root / "want.json")
    files["want"] = {k: want[files[k].name] for k in ("mp4", "wav")}
    return files


@contextlib.contextmanager
def serve(pack: Path):
    """``pack``'s demo served as smop-demo serves it, in this process; its url, upload folder and session."""
    from smop.bin import demo

    args = demo.get_parser().parse_args(["--model", str(pack), "--port", str(_free_port())])
    with demo.app_folder() as folder:
        session = demo.load_session(args, folder)
        page = demo.launch(session, args, block=False)
        yield {"url": page.local_url, "folder": folder, "session": session}
        page.close()
    assert not folder.exists()


@pytest.fixture(scope="module")
def app(inputs):
    """The tiny audio-visual model's demo."""
    with serve(inputs["pack"]) as served:
        yield served


@pytest.fixture(scope="module")
def browser(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app):
    """A fresh page of the demo; fails the test if it asked for anything but loopback."""
    outside = []
    context, page = open_page(browser, app["url"], outside)
    yield page
    context.close()
    assert outside == [], f"the page asked for non-loopback addresses: {outside}"


def test_an_uploaded_mp4_gives_smop_transcribes_transcript(page, inputs, app, tmp_path):
    from playwright.sync_api import expect

    upload(page, "video", inputs["mp4"])
    want = inputs["want"]["mp4"]["text"]
    assert want and transcribe(page) == want
    expect(page.locator("#segments")).to_contain_text(want)
    expect(page.locator("#crops img")).to_be_visible()
    expect(page.locator("#usage img")).to_be_visible()
    assert "1.60 s of media" in page.locator("#timings textarea").input_value()
    # what the page read is gradio's copy in the app's own folder
    assert any(p.name == inputs["mp4"].name for p in app["folder"].rglob("*.mp4"))


def test_a_wav_given_to_the_av_model_gives_its_transcript_and_the_note(page, inputs):
    from playwright.sync_api import expect

    upload(page, "audio", inputs["wav"])
    assert transcribe(page) == inputs["want"]["wav"]["text"] != ""
    expect(page.locator("#notes textarea")).to_have_value(
        "tone.wav: no video stream: decoded with the video blanked, as modality dropout blanks it in training"
    )


def test_a_fixed_model_shows_no_rate_choice(page):
    from playwright.sync_api import expect

    expect(page.locator("#mode")).to_contain_text("audio only")
    expect(page.locator("#rate")).to_have_count(0)


def test_an_elastic_models_rate_is_chosen_per_modality(browser, inputs, tmp_path_factory, request):
    from playwright.sync_api import expect

    from smop.demo.session import AUDIO_ONLY, DemoSession
    from tiny_pack import build_tiny_pack

    pack = build_tiny_pack(
        tmp_path_factory.mktemp("elastic"),
        request.getfixturevalue("pretrained"),
        "audiovisual",
        audio_compressor_conf={"rates": [4, 8]},
        video_compressor_conf={"rates": [2, 5]},
        model_conf={"modalities": ["audiovisual", "audio", "video"]},
    )
    with serve(pack) as served:
        outside = []
        context, page = open_page(browser, served["url"], outside)
        rate = page.locator("#rate input")
        expect(rate).to_have_value("audio 4 / video 2 (12.5 + 12.5 tokens/s)")
        page.locator("#mode").get_by_label(AUDIO_ONLY).check()
        expect(rate).to_have_value("audio 4 (12.5 tokens/s)")  # the audio modality's own rates
        rate.click()
        page.get_by_role("option", name="audio 8 (6.25 tokens/s)").click()
        expect(rate).to_have_value("audio 8 (6.25 tokens/s)")
        upload(page, "video", inputs["mp4"])
        text = transcribe(page)
        expect(page.locator("#error textarea")).to_have_count(0)
        expect(page.locator("#cell textarea")).to_have_value("audio at audio 8 (6.25 tokens/s)")  # what decoded it
        context.close()
        # the session's decoding of the file itself at that cell (the served session takes only uploads)
        alone = DemoSession(served["session"].speech2text)
        want = alone.transcribe(str(inputs["mp4"]), AUDIO_ONLY, "audio 8 (6.25 tokens/s)").text
        other = alone.transcribe(str(inputs["mp4"]), AUDIO_ONLY, "audio 4 (12.5 tokens/s)").text
    assert outside == []
    assert want and text == want != other  # the chosen rate reached the model


def test_a_broken_file_shows_the_error_and_the_next_upload_works(page, inputs):
    from playwright.sync_api import expect

    upload(page, "video", inputs["broken"])
    assert transcribe(page) == ""
    error = page.locator("#error textarea")
    expect(error).to_have_value(__import__("re").compile(r"^broken\.mp4: "))
    assert str(inputs["broken"].parent) not in error.input_value()
    page.locator("#video [aria-label='Clear']").first.click()
    upload(page, "video", inputs["mp4"])
    assert transcribe(page) == inputs["want"]["mp4"]["text"]
    expect(page.locator("#error textarea")).to_have_count(0)  # hidden again


def test_a_recording_from_the_fake_webcam_gives_a_transcript(page):
    page.locator("#video [aria-label='Capture from camera']").click()
    page.locator("#video [title='grant webcam access'] button").click()
    record = page.locator("#video [aria-label='start recording']")  # its text turns to Stop; its label stays
    record.click()
    page.wait_for_timeout(2500)
    record.click()
    page.locator("#video video").first.wait_for()
    page.locator("#video [aria-label='Clear']").first.wait_for()
    text = transcribe(page)
    notes = page.locator("#notes textarea").input_value()
    assert page.locator("#error textarea").count() == 0
    assert text != ""
    # chromium's fake camera shows no face: the audio-visual model hears its beeps with the video blanked
    assert "no usable face" in notes and "decoded with the video blanked" in notes, notes
    seconds = float(page.locator("#timings textarea").input_value().split(" s of media")[0])
    assert 1.5 < seconds < 4.0  # the 2.5 s recorded, at 640x480 in real time


def test_a_recording_from_the_fake_microphone_gives_a_transcript_and_the_note(page):
    audio = page.locator("#audio")
    audio.locator("[aria-label='Record audio']").click()
    audio.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(2000)
    audio.locator("button:visible", has_text="Stop").first.click()
    audio.locator("[aria-label='Download']").wait_for()  # the recording is uploaded
    assert transcribe(page) != ""
    notes = page.locator("#notes textarea").input_value()
    assert notes.endswith(
        ": no video stream: decoded with the video blanked, as modality dropout blanks it in training"
    )
    seconds = float(page.locator("#timings textarea").input_value().split(" s of media")[0])
    assert 1.0 < seconds < 3.5


def test_8_concurrent_requests_are_all_answered_correctly_with_bounded_memory(app, inputs):
    from smop.demo.load import PeakRSS, fire

    want = inputs["want"]["mp4"]["text"]
    fire(app["url"], inputs["mp4"], 1)  # warm: the first request's allocations are not the load's
    with PeakRSS(os.getpid()) as rss:
        answers, wall = fire(app["url"], inputs["mp4"], 8)
    assert [(a.text, a.error) for a in answers] == [(want, "")] * 8
    # two requests are served at a time (--concurrency 2) and one decodes at a time: the eight cost
    # little more than one
    assert rss.peak - rss.start < 300, (rss.start, rss.peak)
    print(f"8 requests: wall {wall:.1f} s, RSS {rss.start:.0f} MB before, peak {rss.peak:.0f} MB")


def test_the_command_serves_on_loopback_and_a_sigterm_removes_its_folder(inputs, tmp_path):
    """smop-demo as a user starts it: bound to 127.0.0.1 only, and `kill PID` leaves no upload folder."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[3])}
    cmd = [sys.executable, "-m", "smop.bin.demo", "--model", str(inputs["pack"]), "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.5)
        (folder,) = tmp_path.glob("smop-demo-*")
        assert listening(port) == [f"0100007F:{port:04X}"]  # 127.0.0.1, on neither 0.0.0.0 nor ::
    finally:
        server.send_signal(signal.SIGTERM)
        out = server.communicate(timeout=60)[0]
    assert server.returncode == 0, out
    assert f"on http://127.0.0.1:{port}" in out
    assert not folder.exists() and list(tmp_path.glob("smop-demo-*")) == []
