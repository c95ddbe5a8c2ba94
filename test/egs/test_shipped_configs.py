"""Every shipped config is valid and builds: its components exist, every *_conf key is an option
of the chosen class, and the model builds with tiny stand-ins for the pretrained parts."""

from pathlib import Path

import pytest
import torch
import yaml

from smop.bin.avsr_inference import get_parser as decode_parser
from smop.decoders.quantization import bitsandbytes_available
from smop.tasks.avsr import SmopAVSRTask

EGS = Path(__file__).resolve().parents[2] / "egs"
TRAIN_CONFIGS = sorted(EGS.glob("*/*/conf/train_*.yaml"))
DECODE_CONFIGS = sorted(EGS.glob("*/*/conf/decode*.yaml"))


def test_configs_are_found():
    assert len(TRAIN_CONFIGS) >= 13 and len(DECODE_CONFIGS) >= 2


@pytest.mark.parametrize("config", TRAIN_CONFIGS, ids=lambda p: f"{p.parts[-4]}/{p.name}")
def test_train_config_builds(config, pretrained, tmp_path):
    args = SmopAVSRTask.get_parser().parse_args(["--config", str(config), "--output_dir", str(tmp_path)])
    if args.decoder_conf.get("quantization") and not bitsandbytes_available():
        pytest.skip(f"{config.name} quantizes the LLM: bitsandbytes (tools/install.sh --extra quant) is not installed")
    # The pretrained parts are the recipe's (pretrained/...); tiny ones of the same kinds stand in.
    args.audio_encoder_conf = {**args.audio_encoder_conf, "model_name_or_path": pretrained["whisper"]}
    args.video_encoder_conf = {**args.video_encoder_conf, "checkpoint": pretrained["avhubert"]}
    args.decoder_conf = {**args.decoder_conf, "model_name_or_path": pretrained["llm"]}
    model = SmopAVSRTask.build_model(args)
    assert model.modality == yaml.safe_load(config.read_text()).get("modality", "audiovisual")
    assert SmopAVSRTask.build_preprocess_fn(args, train=True) is not None


@pytest.mark.parametrize("config", DECODE_CONFIGS, ids=lambda p: f"{p.parts[-4]}/{p.name}")
def test_decode_config_keys_are_decoding_options(config):
    args = decode_parser().parse_args(
        ["--config", str(config), "--output_dir", "x", "--data_path_and_name_and_type", "a,speech,wav16k"]
    )
    for key, value in yaml.safe_load(config.read_text()).items():
        assert getattr(args, key) == value


def test_layout_configs_take_the_asr_models_decoder(pretrained, datadir, tmp_path):
    """The mini layout configs start from the ASR model's LoRA and markers (init_param
    <asr>.pth:decoder:decoder): ESPnet's loader must fit our decoder, whatever the projector."""
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

    def build(config, **extra):
        args = SmopAVSRTask.get_parser().parse_args(["--config", str(config), "--output_dir", str(tmp_path)])
        args.audio_encoder_conf = {**args.audio_encoder_conf, "model_name_or_path": pretrained["whisper"]}
        args.video_encoder_conf = {**args.video_encoder_conf, "checkpoint": pretrained["avhubert"]}
        args.decoder_conf = {**args.decoder_conf, "model_name_or_path": pretrained["llm"]}
        return args, SmopAVSRTask.build_model(args)

    conf = EGS / "mini_av" / "avsr_smop" / "conf"
    _, asr = build(conf / "train_asr_dedr.yaml")
    with torch.no_grad():
        for p in asr.parameters():
            if p.requires_grad:
                p.add_(0.1)
    torch.save(asr.state_dict(), tmp_path / "asr.pth")
    for name in ("train_jejr.yaml", "train_jedr.yaml", "train_linear.yaml"):
        args, model = build(conf / name)
        (spec,) = args.init_param
        assert spec == "exp/train_asr_dedr/valid.loss.ave.pth:decoder:decoder"
        load_pretrained_model(f"{tmp_path / 'asr.pth'}:decoder:decoder", model, ignore_init_mismatch=False)
        lora = {k: v for k, v in asr.state_dict().items() if k.startswith("decoder.")}
        assert lora and all(torch.equal(model.state_dict()[k], v) for k, v in lora.items())


def test_avsr_config_takes_the_asr_and_vsr_models_parts(pretrained, tmp_path):
    """The mini AVSR model starts from both single-modality models (init_param): ESPnet's loader,
    entry by entry, gives it the ASR model's audio path and LoRA and the VSR model's video path."""
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

    conf = EGS / "mini_av" / "avsr_smop" / "conf"

    def build(name):
        args = SmopAVSRTask.get_parser().parse_args(["--config", str(conf / name), "--output_dir", str(tmp_path)])
        args.audio_encoder_conf = {**args.audio_encoder_conf, "model_name_or_path": pretrained["whisper"]}
        args.video_encoder_conf = {**args.video_encoder_conf, "checkpoint": pretrained["avhubert"]}
        args.decoder_conf = {**args.decoder_conf, "model_name_or_path": pretrained["llm"]}
        return args, SmopAVSRTask.build_model(args)

    trained = {}
    for name, shift in (("train_asr_dedr.yaml", 0.1), ("train_vsr_dedr.yaml", -0.2)):
        _, model = build(name)
        with torch.no_grad():
            for p in model.parameters():
                if p.requires_grad:
                    p.add_(shift)
        trained[name] = {k: v for k, v in model.state_dict().items() if k.startswith(("projector.", "decoder."))}
        torch.save(model.state_dict(), tmp_path / f"{name}.pth")

    args, avsr = build("train_dedr.yaml")
    where = {"exp/train_asr_dedr": "train_asr_dedr.yaml", "exp/train_vsr_dedr": "train_vsr_dedr.yaml"}
    for spec in args.init_param:
        path, _, rest = spec.partition(":")
        name = where[str(Path(path).parent)]
        load_pretrained_model(f"{tmp_path / name}.pth:{rest}" if rest else f"{tmp_path / name}.pth", avsr, False)
    state = avsr.state_dict()
    asr, vsr = trained["train_asr_dedr.yaml"], trained["train_vsr_dedr.yaml"]
    video = [
        k for k in vsr if k.startswith(("projector.pools.video", "projector.routers.video", "decoder.boundary.video"))
    ]
    audio = [k for k in asr if ".audio" in k or "lora" in k]
    assert video and audio and not set(video) & set(audio)
    assert all(torch.equal(state[k], vsr[k]) for k in video)
    # LoRA comes from the ASR model: the VSR model's entries are restricted to its video path.
    assert all(torch.equal(state[k], asr[k]) for k in audio)


def test_4bit_avsr_config_starts_as_the_bf16_one():
    """The 4-bit model is compared with the bf16 one in RESULTS.md: only the LLM's storage differs."""
    conf = EGS / "mini_av" / "avsr_smop" / "conf"
    bf16, nf4 = (yaml.safe_load((conf / name).read_text()) for name in ("train_dedr.yaml", "train_dedr_4bit.yaml"))
    assert nf4["init_param"] == bf16["init_param"]
    assert {k: v for k, v in nf4["decoder_conf"].items() if k != "quantization"} == bf16["decoder_conf"]
    assert {k: v for k, v in nf4.items() if k != "decoder_conf"} == {
        k: v for k, v in bf16.items() if k != "decoder_conf"
    }
