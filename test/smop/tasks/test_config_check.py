"""Config errors at first contact: named before any model loads, with the valid choices or keys."""

import subprocess
import sys

import pytest
import torch
import yaml

from smop.tasks.avsr import SmopAVSRTask
from smop.tasks.config_check import ConfigError
from tiny_experiment import write_train_config


def _args(cfg, tmp_path, *extra):
    return SmopAVSRTask.get_parser().parse_args(["--config", str(cfg), "--output_dir", str(tmp_path / "exp"), *extra])


def _problems(tmp_path, pretrained, datadir, *extra, replace=(), **overrides):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir, replace=replace, **overrides)
    with pytest.raises(ConfigError) as err:
        SmopAVSRTask.check_args(_args(cfg, tmp_path, *extra))
    assert str(err.value).startswith(f"{cfg}: ")
    return str(err.value)


def test_misspelt_component_lists_the_choices(tmp_path, pretrained, datadir):
    msg = _problems(tmp_path, pretrained, datadir, projector="smopp")
    assert "projector: 'smopp' is not one of linear, mlp, smop (did you mean 'smop'?)" in msg


def test_invalid_modality(tmp_path, pretrained, datadir):
    msg = _problems(tmp_path, pretrained, datadir, modality="audiovideo")
    assert "modality: 'audiovideo' is not one of audio, audiovisual, video (did you mean" in msg


def test_unknown_and_task_supplied_conf_keys(tmp_path, pretrained, datadir):
    msg = _problems(tmp_path, pretrained, datadir, projector_conf={"num_expert": 4, "output_size": 8})
    assert "projector_conf.num_expert: not an option of projector 'smop'" in msg
    assert "(did you mean 'num_experts'?)" in msg and "options: expert_hidden, layout, lb_loss_weight" in msg
    assert "projector_conf.output_size: set by the task" in msg


def test_required_key_missing(tmp_path, pretrained, datadir):
    msg = _problems(tmp_path, pretrained, datadir, decoder_conf={"lora_r": 4}, replace=("decoder_conf",))
    assert "decoder_conf.model_name_or_path: required by decoder 'hf_causal_lm', not set" in msg


def test_components_of_an_unused_modality_are_not_checked(tmp_path, pretrained, datadir):
    cfg = write_train_config(
        tmp_path / "c.yaml",
        pretrained,
        datadir,
        modality="audio",
        video_encoder_conf={"checkpoint": "/nowhere/x.safetensors"},
    )
    SmopAVSRTask.check_args(_args(cfg, tmp_path))  # no error: VSR parts are not built for ASR
    msg = _problems(tmp_path, pretrained, datadir, video_encoder_conf={"checkpoint": "/nowhere/x.safetensors"})
    assert "video_encoder_conf.checkpoint: /nowhere/x.safetensors does not exist" in msg


def test_lora_target_that_matches_nothing(tmp_path, pretrained, datadir):
    msg = _problems(tmp_path, pretrained, datadir, decoder_conf={"lora_target_modules": ["q_proj", "vv_proj"]})
    assert "decoder_conf.lora_target_modules: ['vv_proj'] name no module of" in msg


def test_missing_model_directory(tmp_path, pretrained, datadir):
    msg = _problems(tmp_path, pretrained, datadir, decoder_conf={"model_name_or_path": str(tmp_path / "no_llm")})
    assert f"decoder_conf.model_name_or_path: directory {tmp_path / 'no_llm'} does not exist" in msg
    msg = _problems(tmp_path, pretrained, datadir, audio_encoder_conf={"model_name_or_path": "someone/whisper-x"})
    assert "audio_encoder_conf.model_name_or_path: 'someone/whisper-x' is neither a directory" in msg
    assert "nor a model in the Hugging Face cache" in msg and "hf download someone/whisper-x" in msg


def test_use_adapter_is_refused(tmp_path, pretrained, datadir):
    msg = _problems(tmp_path, pretrained, datadir, "--use_adapter", "true")
    assert "use_adapter: ESPnet's adapters (loralib) are not used by smop" in msg and "decoder_conf.lora_r" in msg


def test_training_command_fails_early_with_exit_2(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir, projector="smopp")
    res = subprocess.run(
        [sys.executable, "-m", "smop.bin.avsr_train", "--config", str(cfg), "--output_dir", str(tmp_path / "exp")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert "avsr_train.py: error: " in res.stderr and "projector: 'smopp' is not one of" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "exp").exists()


def test_print_config_round_trip_rebuilds_the_same_model(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    out = subprocess.run(
        [sys.executable, "-m", "smop.bin.avsr_train", "--config", str(cfg), "--print_config"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    printed = tmp_path / "printed.yaml"
    printed.write_text(out)
    assert yaml.safe_load(out)["projector_conf"]["expert_hidden"] == 32  # a valid YAML document, values kept
    models = []
    for c in (cfg, printed):
        torch.manual_seed(0)
        models.append(SmopAVSRTask.build_model(_args(c, tmp_path)).state_dict())
    assert models[0].keys() == models[1].keys()
    assert all(torch.equal(models[0][k], models[1][k]) for k in models[0])


def test_print_config_names_the_required_keys(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "smop.bin.avsr_train", "--print_config"], capture_output=True, text=True, check=True
    ).stdout
    cfg = yaml.safe_load(out)
    assert cfg["decoder_conf"]["model_name_or_path"] is None and cfg["video_encoder_conf"]["checkpoint"] is None
    printed = tmp_path / "printed.yaml"
    printed.write_text(out)
    with pytest.raises(
        ConfigError, match="decoder_conf.model_name_or_path: required by decoder 'hf_causal_lm', not set"
    ):
        SmopAVSRTask.check_args(_args(printed, tmp_path))


def test_mismatched_ids_between_inputs_name_both_files(tmp_path, pretrained, datadir):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(datadir, data)
    lines = (data / "video.scp").read_text().splitlines(keepends=True)
    (data / "video.scp").write_text("".join(lines[1:]))  # one utterance has no video
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, data)
    res = subprocess.run(
        [sys.executable, "-m", "smop.bin.avsr_train", "--config", str(cfg), "--output_dir", str(tmp_path / "exp")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    first = lines[0].split()[0]
    assert (
        f"1 of the 6 utterances of {data / 'frames_shape'} are not in {data / 'video.scp'}, e.g. ['{first}']"
        in res.stderr
    )


def test_print_config_with_a_bad_config_gives_the_training_refusal(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir, projector="smopp")
    res = subprocess.run(
        [sys.executable, "-m", "smop.bin.avsr_train", "--config", str(cfg), "--print_config"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and res.stdout == ""
    assert "avsr_train.py: error: " in res.stderr and "projector: 'smopp' is not one of" in res.stderr
    assert "Traceback" not in res.stderr


def test_the_config_is_checked_where_it_enters_not_in_build_model(tmp_path, pretrained, datadir, monkeypatch):
    """build_model trusts its caller (training's main checked the config); loading a trained model
    checks once."""
    from smop.decoders.hf_causal_lm_decoder import HFCausalLMDecoder

    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    args = _args(cfg, tmp_path)
    calls = []
    check = HFCausalLMDecoder.check_conf.__func__
    monkeypatch.setattr(
        HFCausalLMDecoder, "check_conf", classmethod(lambda cls, *a, **kw: calls.append(a) or check(cls, *a, **kw))
    )
    SmopAVSRTask.build_model(args)
    assert calls == []
    SmopAVSRTask.build_trained_model(args)
    assert len(calls) == 1
