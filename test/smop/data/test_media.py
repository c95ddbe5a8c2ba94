"""Reading media with ffmpeg: the official grey conversion, optional streams, chunked reading."""

import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from smop.data.media import GREY_WEIGHTS, MediaError, read_media, rgb_to_grey
from stalling_ffmpeg import running, stalling_ffmpeg


def _ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def colour_clip(tmp_path_factory):
    """2 s of 64x48 video, lossless RGB (so the decoded pixels are known), with a 16 kHz tone."""
    root = tmp_path_factory.mktemp("media")
    frames = np.zeros((50, 48, 64, 3), np.uint8)
    frames[:, :, :16] = (200, 0, 0)
    frames[:, :, 16:32] = (0, 200, 0)
    frames[:, :, 32:48] = (0, 0, 200)
    frames[:, :, 48:] = (90, 160, 30)
    raw = root / "frames.rgb"
    raw.write_bytes(frames.tobytes())
    wav = root / "tone.wav"
    soundfile.write(wav, 0.3 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000), 16000)
    mkv = root / "clip.mkv"
    _ffmpeg(
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        "64x48",
        "-r",
        "25",
        "-i",
        str(raw),
        "-i",
        str(wav),
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "bgr0",
        "-c:a",
        "pcm_s16le",
        str(mkv),
    )
    return root, frames, mkv, wav


def test_grey_weights_on_pure_colours():
    rgb = np.zeros((1, 1, 4, 3), np.uint8)
    rgb[0, 0, :3] = np.eye(3, dtype=np.uint8) * 255
    rgb[0, 0, 3] = 255
    grey = rgb_to_grey(rgb)[0, 0]
    assert grey.tolist() == [round(255 * w) for w in GREY_WEIGHTS] + [255] == [76, 150, 29, 255]


def test_frames_are_grey_by_the_official_weights(colour_clip):
    _, frames, mkv, _ = colour_clip
    info, grey, wave = read_media(mkv)
    want = np.rint(frames.astype(np.float64) @ np.array(GREY_WEIGHTS))
    assert grey.shape == (50, 48, 64) and grey.dtype == np.uint8
    assert np.abs(grey.astype(int) - want).max() == 0
    assert grey[0, 0, :64:16].tolist() == [60, 117, 23, 124]
    assert info.has_audio and wave.shape == (32000,)


def test_optional_and_skipped_streams(colour_clip):
    _, _, mkv, wav = colour_clip
    info, frames, wave = read_media(wav, need=("audio",), optional=("video",))
    assert frames is None and wave.shape == (32000,) and not info.has_video
    with pytest.raises(MediaError, match="tone.wav: no video stream"):
        read_media(wav)
    info, frames, wave = read_media(mkv, need=("video",))
    assert wave is None and frames.shape == (50, 48, 64)
    silent = mkv.with_name("silent.mkv")
    _ffmpeg("-i", str(mkv), "-an", "-c", "copy", str(silent))
    info, frames, wave = read_media(silent, need=("video",), optional=("audio",))
    assert wave is None and frames.shape[0] == 50
    with pytest.raises(MediaError, match="silent.mkv: no audio stream"):
        read_media(silent)


def test_other_frame_rates_are_resampled_to_25(colour_clip):
    _, _, mkv, _ = colour_clip
    fast = mkv.with_name("fast.mkv")
    _ffmpeg("-i", str(mkv), "-r", "50", "-c:v", "ffv1", "-c:a", "copy", str(fast))
    info, frames, _ = read_media(fast)
    assert info.fps == 50 and frames.shape[0] == 50


def test_frames_made_grey_a_chunk_at_a_time_equal_the_whole(colour_clip, monkeypatch):
    from smop.data import media

    _, frames, mkv, _ = colour_clip
    monkeypatch.setattr(media, "CHUNK_FRAMES", 1000)
    _, whole, wave = read_media(mkv)
    monkeypatch.setattr(media, "CHUNK_FRAMES", 3)  # 50 frames: 16 chunks of 3 and one of 2
    _, chunked, wave3 = read_media(mkv)
    assert chunked.shape == whole.shape == (50, 48, 64)
    assert np.array_equal(chunked, whole) and np.array_equal(wave3, wave)


def test_a_long_recording_spills_to_a_mapped_file(colour_clip, monkeypatch):
    from smop.data import media

    _, _, mkv, _ = colour_clip
    _, whole, _ = read_media(mkv)
    monkeypatch.setattr(media, "CHUNK_FRAMES", 4)
    monkeypatch.setattr(media, "SPILL_BYTES", 10 * 48 * 64)  # 10 frames: the 3rd chunk spills the first two
    _, spilled, _ = read_media(mkv)
    assert isinstance(spilled, np.memmap) and not spilled.flags.writeable
    assert spilled.shape == whole.shape and np.array_equal(spilled, whole)


def test_an_error_while_reading_leaves_no_ffmpeg_running(colour_clip, monkeypatch):

    from smop.data import media

    _, _, mkv, _ = colour_clip

    def broken(rgb):
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(media, "CHUNK_FRAMES", 2)
    monkeypatch.setattr(media, "rgb_to_grey", broken)
    with pytest.raises(RuntimeError, match="conversion failed"):
        read_media(mkv)

    def cmdline(p):
        try:
            return p.read_bytes()
        except OSError:  # a process that ended meanwhile
            return b""

    assert [p for p in Path("/proc").glob("[0-9]*/cmdline") if str(mkv).encode() in cmdline(p)] == []


def test_another_frame_rate_is_not_decoded_twice(colour_clip, monkeypatch):
    """The run at the source rate stops once ffmpeg has described the file; only the frames of the
    run through the fps filter are made grey."""
    from smop.data import media

    _, _, mkv, _ = colour_clip
    fast = mkv.with_name("fast2.mkv")
    _ffmpeg("-i", str(mkv), "-r", "50", "-c:v", "ffv1", "-c:a", "copy", str(fast))
    converted = []
    grey = media.rgb_to_grey
    monkeypatch.setattr(media, "rgb_to_grey", lambda rgb: converted.append(rgb.shape[0]) or grey(rgb))
    info, frames, wave = read_media(fast)
    assert info.fps == 50 and frames.shape[0] == 50 and sum(converted) == 50
    assert wave.shape == (32000,)


def test_ffmpeg_reads_local_files_only(colour_clip, tmp_path, monkeypatch):
    root, _, _, wav = colour_clip
    # A name is never a URL or an ffmpeg protocol.
    with pytest.raises(MediaError, match="smop reads local files only, never a URL or an ffmpeg protocol"):
        read_media("http://127.0.0.1:9/clip.mp4", need=("audio",))
    monkeypatch.chdir(root)
    with pytest.raises(MediaError, match=r"concat:tone.wav\|tone.wav: no such file; smop reads local files only"):
        read_media("concat:tone.wav|tone.wav", need=("audio",))
    # A colon in a local file's name is no protocol.
    colon = tmp_path / "take:2.wav"
    colon.write_bytes(wav.read_bytes())
    monkeypatch.chdir(tmp_path)
    _, _, wave = read_media("take:2.wav", need=("audio",))
    assert wave.size == 32000


def test_a_pipe_is_refused_before_ffmpeg_opens_it(tmp_path):
    fifo = tmp_path / "input.wav"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(MediaError, match=f"{fifo}: not a regular file .a folder, pipe or device.; give a media file"):
        read_media(fifo, need=("audio",))
    assert time.monotonic() - start < 5


def test_a_stalled_decoding_is_given_up_its_ffmpeg_killed_and_temporary_file_removed(
    colour_clip, tmp_path, monkeypatch
):
    _, _, _, wav = colour_clip
    fake = stalling_ffmpeg(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(MediaError, match=f"{wav}: decoding made no progress for 1 s .a stalled input..; given up"):
        read_media(wav, need=("audio",), stall_timeout=1)
    assert time.monotonic() - start < 10
    assert not running(int((fake / "pid").read_text()))
    assert not list(tmp_path.glob("*.f32"))
