"""A packed model in seconds: the tiny pretrained parts (conftest ``pretrained``), trained for two
steps on a tiny data dir and packed with its parts copied in. Its transcripts mean nothing; it is
for tests of what loading and transcription do with bad packs and bad input."""

from pathlib import Path

import numpy as np
import soundfile
import yaml

from smop.data.mouth_roi import CROP_SETTINGS, MouthCropSettings
from smop.mini.mean_face import write_mean_face
from tiny_experiment import write_datadir, write_train_config


def build_tiny_pack(root: Path, pretrained: dict, modality: str = "audio", **train_options) -> Path:
    """The folder of a pack of a ``modality`` model trained for two steps under ``root``;
    ``train_options``: more training config (e.g. an elastic model's compressor rates and modalities)."""
    from smop.bin import pack_model
    from smop.tasks.avsr import SmopAVSRTask

    data = write_datadir(root / "data" / "train", n=3)
    write_mean_face(root / "mean_face.npy")
    MouthCropSettings.of_face(root / "mean_face.npy", 96, None, 12).write(data / CROP_SETTINGS)
    config = write_train_config(
        root / "train.yaml",
        pretrained,
        data,
        modality=modality,
        max_epoch=1,
        num_iters_per_epoch=2,
        audio_encoder_conf={"length_aware": True},  # as the mini recipes: a waveform is not padded to 30 s
        **train_options,
    )
    if modality == "audio":  # no video encoder to carry
        cfg = yaml.safe_load(config.read_text())
        for key in ("video_encoder", "video_encoder_conf"):
            cfg.pop(key)
        config.write_text(yaml.safe_dump(cfg))
    SmopAVSRTask.main(cmd=["--config", str(config), "--output_dir", str(root / "exp")])
    decode = root / "decode.yaml"
    decode.write_text(yaml.safe_dump({"beam_size": 1, "batch_size": 2}))
    out = root / "pack"
    pack_model.main(
        [
            "--exp_dir",
            str(root / "exp"),
            "--out_dir",
            str(out),
            "--decode_config",
            str(decode),
            "--copy_pretrained",
            "all",
        ]
    )
    return out


def write_wave(path: Path, seconds: float, seed: int = 0, samples: int = None) -> Path:
    """A 16 kHz tone with a little noise (``samples`` long if given)."""
    n = samples if samples is not None else int(seconds * 16000)
    t = np.arange(n) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(seed).standard_normal(n)
    soundfile.write(path, wave.astype(np.float32), 16000)
    return path
