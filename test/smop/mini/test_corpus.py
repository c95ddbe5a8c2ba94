"""The mini corpus writes several clips per ffmpeg run; the files are those of one run per clip."""

import numpy as np
import pytest

from smop.mini.corpus import plan, render_utterance, write_utterances


@pytest.fixture(scope="module")
def rendered():
    specs, _ = plan(0, 4, 1, 1, 2)
    return [render_utterance(s) for s in (specs[0], specs[4], specs[-1])]  # trainval, pretrain, test


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_batched_files_equal_one_run_per_clip(rendered, tmp_path):
    write_utterances(rendered, tmp_path / "batch")
    for u in rendered:
        write_utterances([u], tmp_path / "single")
    batch, single = _files(tmp_path / "batch"), _files(tmp_path / "single")
    assert batch == single
    assert sorted(p.suffix for p in batch) == [".mp4"] * 3 + [".npy"] * 3 + [".txt"] * 3  # no .part files left
    u = rendered[1]
    assert len(u.spec.sentences) > 1 and u.video.shape[0] == int(np.ceil(u.wave.size / 640))
    txt = batch[next(p for p in batch if p.name == f"{u.spec.utt}.txt" and u.spec.speaker in str(p))].decode()
    assert txt.startswith("Text:  " + " ".join(w for w, _, _ in u.words).upper())


def test_a_failed_mux_names_the_clips(rendered, tmp_path, monkeypatch):
    import smop.mini.corpus as corpus

    monkeypatch.setattr(corpus, "_ENCODE", ["-c:v", "no_such_codec"])
    with pytest.raises(RuntimeError, match=f"ffmpeg failed on {rendered[0].spec.speaker}/{rendered[0].spec.utt}"):
        write_utterances(rendered[:1], tmp_path / "x")
    assert not list((tmp_path / "x").rglob("*.mp4"))


def test_rendering_is_repeatable(rendered):
    """The corpus is the same on every run (sox dithers with a random seed unless told -R)."""
    u = rendered[0]
    again = render_utterance(u.spec)
    np.testing.assert_array_equal(again.wave, u.wave)
    np.testing.assert_array_equal(again.video, u.video)
    np.testing.assert_array_equal(again.marks, u.marks)
