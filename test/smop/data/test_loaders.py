import numpy as np
import pytest
import soundfile

from smop.data.loaders import DataError, MouthNpyReader, Wav16kReader, audio_samples, read_scp


def _scp(tmp_path, name, entries):
    p = tmp_path / name
    p.write_text("".join(f"{k} {v}\n" for k, v in entries))
    return str(p)


def test_wav16k_reads_mono_16k(tmp_path):
    soundfile.write(tmp_path / "a.wav", np.full(1600, 0.25, dtype=np.float32), 16000)
    wave = Wav16kReader(_scp(tmp_path, "wav.scp", [("utt1", tmp_path / "a.wav")]))["utt1"]
    assert wave.dtype == np.float32 and wave.shape == (1600,) and wave[0] == pytest.approx(0.25, abs=1e-4)


@pytest.mark.parametrize("rate,channels,match", [(8000, 1, "8000 Hz, expected 16000"), (16000, 2, "2 channels")])
def test_wav16k_errors_name_file_and_utterance(tmp_path, rate, channels, match):
    soundfile.write(tmp_path / "b.wav", np.zeros((800, channels), dtype=np.float32), rate)
    reader = Wav16kReader(_scp(tmp_path, "wav.scp", [("spk-utt9", tmp_path / "b.wav")]))
    with pytest.raises(DataError, match=match) as err:
        reader["spk-utt9"]
    assert "spk-utt9" in str(err.value) and "b.wav" in str(err.value)


def test_wav16k_unreadable(tmp_path):
    (tmp_path / "c.wav").write_bytes(b"RIFF not really")
    reader = Wav16kReader(_scp(tmp_path, "wav.scp", [("u", tmp_path / "c.wav")]))
    with pytest.raises(DataError, match="cannot read audio .*c.wav"):
        reader["u"]


def test_mouth_npy(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((5, 96, 96), np.uint8))
    np.save(tmp_path / "bad.npy", np.zeros((5, 96, 96), np.float32))
    reader = MouthNpyReader(_scp(tmp_path, "video.scp", [("ok", tmp_path / "ok.npy"), ("bad", tmp_path / "bad.npy")]))
    assert reader["ok"].shape == (5, 96, 96)
    with pytest.raises(DataError, match="bad: .*float32"):
        reader["bad"]


def test_scp_errors(tmp_path):
    p = tmp_path / "x.scp"
    p.write_text("a 1\na 2\n")
    with pytest.raises(DataError, match="duplicate utterance id 'a'"):
        read_scp(str(p))
    p.write_text("a 1\n\nb 2\n")
    with pytest.raises(DataError, match="x.scp:2: empty line"):
        read_scp(str(p))


def test_wav16k_reads_kaldi_pipes_and_ark_offsets(tmp_path):
    """Data dirs may point at any audio format through a Kaldi pipe, or at a Kaldi ark."""
    import kaldiio

    wave = (0.3 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    soundfile.write(tmp_path / "a.flac", wave, 16000)
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path / 'a.ark'},{tmp_path / 'ark.scp'}") as w:
        w("b", (16000, (wave * 32767).astype(np.int16)))
    ark_entry = (tmp_path / "ark.scp").read_text().split()[1]
    scp = tmp_path / "wav.scp"
    scp.write_text(f"a sox {tmp_path / 'a.flac'} -t wav - |\nb {ark_entry}\n")
    reader = Wav16kReader(str(scp))
    for utt in ("a", "b"):
        got = reader[utt]
        assert got.dtype == np.float32 and got.shape == (16000,) and np.abs(got - wave).max() < 1e-4
    assert audio_samples(f"sox {tmp_path / 'a.flac'} -t wav - |") == 16000
    bad = tmp_path / "bad.scp"
    bad.write_text(f"c sox {tmp_path / 'a.flac'} -t wav -r 8000 - |\n")
    with pytest.raises(DataError, match="utterance c: .* is 8000 Hz, expected 16000"):
        Wav16kReader(str(bad))["c"]
