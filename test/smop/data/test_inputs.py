"""The one table of model inputs, and the recipe's way of asking it."""

import subprocess
import sys

import pytest

from smop.data.inputs import SAMPLES_PER_FRAME, data_triples


def test_triples_per_modality():
    assert SAMPLES_PER_FRAME == 640
    assert data_triples("d", "audio") == [("d/wav.scp", "speech", "wav16k")]
    assert data_triples("d", "video", text=True) == [("d/video.scp", "video", "mouth_npy"), ("d/text", "text", "text")]
    assert [t[1] for t in data_triples("d", "audiovisual")] == ["speech", "video"]
    with pytest.raises(ValueError, match="modality must be one of audio, video, audiovisual, got 'av'"):
        data_triples("d", "av")


def test_data_args_command(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("modality: video\n")
    run = [sys.executable, "-m", "smop.bin.data_args", "--config", str(cfg)]
    out = subprocess.run(
        run + ["--data_dir", "data/dev", "--prefix", "valid_", "--text"], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [
        "--valid_data_path_and_name_and_type",
        "data/dev/video.scp,video,mouth_npy",
        "--valid_data_path_and_name_and_type",
        "data/dev/text,text,text",
    ]
    assert subprocess.run(run + ["--modality_only"], capture_output=True, text=True).stdout == "video\n"
    cfg.write_text("projector: smop\n")  # no modality key: ESPnet's default
    assert subprocess.run(run + ["--modality_only"], capture_output=True, text=True).stdout == "audiovisual\n"
    cfg.write_text("modality: audiovideo\n")
    bad = subprocess.run(run + ["--modality_only"], capture_output=True, text=True)
    assert bad.returncode != 0 and f"{cfg}: modality 'audiovideo' is not one of audio, video, audiovisual" in bad.stderr


def test_data_args_lists_the_cells_of_an_elastic_grid(tmp_path):
    from smop.bin.data_args import decoding_cells

    assert decoding_cells({"modality": "audio"}) == ["- audio"]  # a fixed-rate model: its one cell
    config = {
        "modality": "audiovisual",
        "audio_compressor_conf": {"rates": [4, 16]},
        "video_compressor_conf": {"rates": [2, 5]},
        "model_conf": {"modalities": ["audio", "audiovisual"]},
    }
    assert decoding_cells(config) == [
        "- audiovisual",
        "audio_a4 audio --modality audio --audio_rate 4",
        "audio_a16 audio --modality audio --audio_rate 16",
        "audiovisual_a4_v5 audiovisual --modality audiovisual --audio_rate 4 --video_rate 5",
        "audiovisual_a16_v2 audiovisual --modality audiovisual --audio_rate 16 --video_rate 2",
        "audiovisual_a16_v5 audiovisual --modality audiovisual --audio_rate 16 --video_rate 5",
    ]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("modality: audiovisual\n")
    out = subprocess.run(
        [sys.executable, "-m", "smop.bin.data_args", "--config", str(cfg), "--data_dir", "d", "--modality", "video"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["--data_path_and_name_and_type", "d/video.scp,video,mouth_npy"]
