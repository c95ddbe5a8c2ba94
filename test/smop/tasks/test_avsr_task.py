import subprocess
import sys

import pytest
import torch
import yaml

from smop.inference.settings import DecodeSettings
from smop.tasks.avsr import SmopAVSRTask
from tiny_experiment import dataset_loss, write_train_config


def test_print_config_shows_component_defaults():
    out = subprocess.run(
        [sys.executable, "-m", "smop.bin.avsr_train", "--print_config", "--projector", "smop"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cfg = yaml.safe_load(out)
    assert cfg["projector"] == "smop"
    assert cfg["projector_conf"] == {
        "layout": "dedr",
        "num_experts": 4,
        "top_k": 2,
        "expert_hidden": 2048,
        "lb_loss_weight": 0.01,
        "z_loss_weight": 0.001,
    }
    assert cfg["audio_compressor_conf"]["rate"] == 4 and cfg["video_compressor_conf"]["rate"] == 2
    assert cfg["decoder_conf"]["lora_r"] == 64 and cfg["decoder_conf"]["lora_target_modules"] == ["q_proj", "v_proj"]
    assert cfg["modality"] == "audiovisual"


def _args(config_path, output_dir, *extra):
    parser = SmopAVSRTask.get_parser()
    return parser.parse_args(["--config", str(config_path), "--output_dir", str(output_dir), *extra])


@pytest.mark.parametrize(
    "modality,encoders",
    [("audio", {"audio_encoder"}), ("video", {"video_encoder"}), ("audiovisual", {"audio_encoder", "video_encoder"})],
)
def test_modality_builds_only_the_encoders_it_uses(tmp_path, pretrained, datadir, modality, encoders):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir, modality=modality)
    model = SmopAVSRTask.build_model(_args(cfg, tmp_path / "exp"))
    built = {n for n in ("audio_encoder", "video_encoder") if getattr(model, n) is not None}
    assert built == encoders
    assert set(model.projector.routers) == {"audio", "video"} & {
        m for m in ("audio", "video") if f"{m}_encoder" in encoders
    }


def test_state_dict_holds_only_trained_weights_and_reloads_exactly(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir, projector_conf={"layout": "jedr"})
    args = _args(cfg, tmp_path / "exp")
    torch.manual_seed(0)
    model = SmopAVSRTask.build_model(args)
    with torch.no_grad():  # make the trained parts differ from a fresh build
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    state = model.state_dict()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(state) == trainable
    assert not any(k.startswith(("audio_encoder.", "video_encoder.")) for k in state)
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(state, tmp_path / "exp" / "1epoch.pth")
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert (tmp_path / "exp" / "1epoch.pth").stat().st_size < 1.2 * 4 * n_trainable + 200_000

    loaded, _ = SmopAVSRTask.build_model_from_file(tmp_path / "exp" / "config.yaml", tmp_path / "exp" / "1epoch.pth")
    assert dataset_loss(loaded, args, datadir) == pytest.approx(dataset_loss(model, args, datadir), rel=1e-6)
    speech, video = torch.randn(2, 16000) * 0.1, torch.randn(2, 25, 88, 88)
    lengths = (torch.tensor([16000, 11000]), torch.tensor([25, 18]))
    search = DecodeSettings().search()
    a, _ = model.recognize(speech, lengths[0], video, lengths[1], **search)
    b, _ = loaded.recognize(speech, lengths[0], video, lengths[1], **search)
    assert a == b


def test_checkpoint_mismatch_is_an_error(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    model = SmopAVSRTask.build_model(_args(cfg, tmp_path / "exp"))
    state = model.state_dict()
    state["projector.bogus"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="unexpected"):
        model.load_state_dict(state)
    state.pop("projector.bogus")
    state.pop(next(iter(state)))
    with pytest.raises(RuntimeError, match="missing"):
        model.load_state_dict(state)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_in_a_checkpoint_is_refused(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    args = _args(cfg, tmp_path / "exp")
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save({"projector.x": _Payload()}, tmp_path / "exp" / "evil.pth")
    with pytest.raises(RuntimeError, match="refused"):
        SmopAVSRTask.build_model_from_file(tmp_path / "exp" / "config.yaml", tmp_path / "exp" / "evil.pth")


@pytest.mark.parametrize("projector,layout", [("linear", None), ("smop", "jejr"), ("smop", "dedr"), ("smop", "jedr")])
def test_twenty_trainer_steps_lower_the_loss(tmp_path, pretrained, datadir, projector, layout):
    conf = {} if layout is None else {"layout": layout, "num_experts": 4, "top_k": 2, "expert_hidden": 32}
    cfg = write_train_config(
        tmp_path / "c.yaml", pretrained, datadir, projector=projector, projector_conf=conf, replace=("projector_conf",)
    )
    exp = tmp_path / "exp"
    args = _args(cfg, exp)
    torch.manual_seed(0)
    before = dataset_loss(SmopAVSRTask.build_model(args), args, datadir)
    SmopAVSRTask.main(cmd=["--config", str(cfg), "--output_dir", str(exp)])  # 2 epochs x 10 steps
    for name in (
        "config.yaml",
        "checkpoint.pth",
        "2epoch.pth",
        "valid.loss.best.pth",
        "latest.pth",
        "valid.loss.ave.pth",
    ):
        assert (exp / name).exists(), name
    model, train_args = SmopAVSRTask.build_model_from_file(exp / "config.yaml", exp / "valid.loss.best.pth")
    after = dataset_loss(model, train_args, datadir)
    assert after < 0.8 * before, (before, after)
    # what was trained, as data (RESULTS.md and model cards read it; no log is parsed)
    summary = yaml.safe_load((exp / "model_summary.yaml").read_text())
    assert summary == model.summary()
    assert summary["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert summary["parts"]["projector"]["trainable"] == sum(p.numel() for p in model.projector.parameters())
    assert summary["projector"].get("layout") == layout


def test_missing_model_file_lists_the_checkpoints_there(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    args = _args(cfg, tmp_path / "exp")
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    for name in ("1epoch.pth", "valid.loss.best.pth"):
        (tmp_path / "exp" / name).write_bytes(b"")
    with pytest.raises(
        FileNotFoundError,
        match=r"valid\.loss\.ave\.pth: no such checkpoint; .*exp holds 1epoch\.pth, valid\.loss\.best\.pth$",
    ):
        SmopAVSRTask.build_model_from_file(tmp_path / "exp" / "config.yaml", tmp_path / "exp" / "valid.loss.ave.pth")
    with pytest.raises(FileNotFoundError, match=r"the directory .*nowhere does not exist"):
        SmopAVSRTask.build_model_from_file(tmp_path / "exp" / "config.yaml", tmp_path / "nowhere" / "a.pth")


def test_rates_alone_on_the_command_line_make_an_elastic_compressor(tmp_path, pretrained, datadir):
    """No parser default merges a rate into a --*_compressor_conf given on the command line."""
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    args = _args(cfg, tmp_path / "exp", "--audio_compressor_conf", "rates=[4,8]")
    assert args.audio_compressor_conf == {"rates": [4, 8]}
    SmopAVSRTask.check_args(args)
    summary = SmopAVSRTask.build_model(args).summary()
    assert summary["compressors"]["audio"]["rates"] == [4, 8]


def test_a_compressor_conf_without_rate_takes_the_tasks_default(tmp_path, pretrained, datadir):
    """A compressor conf that sets no rate gets the task's, and the summary records it as built."""
    cfg = write_train_config(
        tmp_path / "c.yaml",
        pretrained,
        datadir,
        video_compressor_conf={},
        audio_compressor="stack",
        audio_compressor_conf={"rate": 3},
    )
    args = _args(cfg, tmp_path / "exp")
    assert args.video_compressor_conf == {}
    SmopAVSRTask.check_args(args)
    summary = SmopAVSRTask.build_model(args).summary()
    assert summary["compressors"] == {
        "audio": {"type": "StackCompressor", "rate": 3},
        "video": {"type": "AvgPoolCompressor", "rate": 2},
    }
    assert summary["decoder"]["lora_r"] == 4 and summary["decoder"]["lora_target_modules"] == ["q_proj", "v_proj"]
