"""Every shipped config is valid and builds: its components exist, every *_conf key is an option
of the chosen class, and the model builds with tiny stand-ins for the pretrained parts."""
from pathlib import Path

import pytest
import yaml

from smop.bin.avsr_inference import get_parser as decode_parser
from smop.tasks.avsr import SmopAVSRTask

EGS = Path(__file__).resolve().parents[2] / "egs"
TRAIN_CONFIGS = sorted(EGS.glob("*/*/conf/train_*.yaml"))
DECODE_CONFIGS = sorted(EGS.glob("*/*/conf/decode*.yaml"))


def test_configs_are_found():
    assert len(TRAIN_CONFIGS) >= 9 and len(DECODE_CONFIGS) >= 2


@pytest.mark.parametrize("config", TRAIN_CONFIGS, ids=lambda p: f"{p.parts[-4]}/{p.name}")
def test_train_config_builds(config, pretrained, tmp_path):
    args = SmopAVSRTask.get_parser().parse_args(["--config", str(config), "--output_dir", str(tmp_path)])
    # The pretrained parts are the recipe's (pretrained/...); tiny ones of the same kinds stand in.
    args.audio_encoder_conf = {**args.audio_encoder_conf, "model_name_or_path": pretrained["whisper"]}
    args.video_encoder_conf = {**args.video_encoder_conf, "checkpoint": pretrained["avhubert"]}
    args.decoder_conf = {**args.decoder_conf, "model_name_or_path": pretrained["llm"]}
    model = SmopAVSRTask.build_model(args)
    assert model.modality == yaml.safe_load(config.read_text()).get("modality", "audiovisual")
    assert SmopAVSRTask.build_preprocess_fn(args, train=True) is not None


@pytest.mark.parametrize("config", DECODE_CONFIGS, ids=lambda p: f"{p.parts[-4]}/{p.name}")
def test_decode_config_keys_are_decoding_options(config):
    args = decode_parser().parse_args(["--config", str(config), "--output_dir", "x",
                                       "--data_path_and_name_and_type", "a,speech,wav16k"])
    for key, value in yaml.safe_load(config.read_text()).items():
        assert getattr(args, key) == value
