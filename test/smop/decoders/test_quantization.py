"""The frozen LLM in 4 or 8 bits (decoder_conf.quantization): bitsandbytes' layers, LoRA training,
checkpoints, packs and decoding a model with its LLM quantized otherwise than in training."""

import logging
import shutil
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip(
    "bitsandbytes", reason="bitsandbytes (the quant extra: tools/install.sh --extra quant) is not installed"
)

import bitsandbytes as bnb  # noqa: E402

from smop.data.inputs import data_triples  # noqa: E402
from smop.decoders import quantization as quant  # noqa: E402
from smop.decoders.hf_causal_lm_decoder import HFCausalLMDecoder  # noqa: E402
from smop.inference import pack_layout  # noqa: E402
from smop.tasks.avsr import SmopAVSRTask  # noqa: E402
from smop.tasks.config_check import ConfigError  # noqa: E402
from smop.utils.checkpoint import load_model_state  # noqa: E402
from smop.utils.io import sha256_of  # noqa: E402
from tiny_experiment import SENTENCES, pretrained_tiny_llama, write_train_config  # noqa: E402

FOUR_BITS = {"bits": 4, "type": "nf4", "double_quant": True, "compute_dtype": "float32"}
QUANTIZED = {4: bnb.nn.Linear4bit, 8: bnb.nn.Linear8bitLt}


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    """A tiny Llama whose linear layers have multiples of 32 outputs: bitsandbytes' CPU 4-bit
    inference kernel packs them in blocks of 32 (the shared tiny Llama has 24)."""
    from smop.utils.hf_release import save_llama, train_spm_tokenizer

    root = tmp_path_factory.mktemp("llm32")
    tok = train_spm_tokenizer(SENTENCES * 10, root / "tokenizer", vocab_size=300)
    save_llama(root / "llm", tok, model=pretrained_tiny_llama(tok, hidden_size=64, intermediate_size=128))
    return str(root / "llm")


def _decoder(llm, quantization, frozen_dtype="float32"):
    torch.manual_seed(0)
    return HFCausalLMDecoder(
        ["audio"], llm, lora_r=4, lora_dropout=0.0, frozen_dtype=frozen_dtype, quantization=quantization
    ).to(torch.float32)  # as ESPnet casts the model: frozen parts keep theirs


def _embeds(d):
    g = torch.Generator().manual_seed(0)
    return {"audio": (torch.randn(2, 5, d, generator=g), torch.tensor([5, 3]))}


@pytest.mark.parametrize("bits", [4, 8])
def test_linear_layers_are_bitsandbytes_and_the_rest_is_not(llm, bits):
    dec = _decoder(llm, {"bits": bits}, frozen_dtype="bfloat16")
    layers = dec.llm.get_base_model().model.layers
    linear = [m for layer in layers for m in layer.modules() if isinstance(m, torch.nn.Linear)]
    quantized = [m for m in linear if isinstance(m, QUANTIZED[bits])]
    # 7 projections a layer, 2 layers; the LoRA A and B of q_proj and v_proj stay plain Linear
    assert len(quantized) == 14 and len(linear) == 14 + 2 * 2 * 2
    assert {m.weight.dtype for m in quantized} == {torch.uint8 if bits == 4 else torch.int8}
    assert type(dec.llm.get_output_embeddings()) is torch.nn.Linear
    assert dec.llm.get_output_embeddings().weight.dtype == torch.bfloat16  # frozen_dtype, not peft's float32
    assert dec.llm.get_input_embeddings().weight.dtype == torch.bfloat16
    assert {p.dtype for p in dec.parameters() if p.requires_grad} == {torch.float32}
    assert dec.summary()["quantization"] == ({"bits": 8} if bits == 8 else {**FOUR_BITS, "compute_dtype": "bfloat16"})


@pytest.mark.parametrize("bits", [4, 8])
def test_a_training_step_changes_lora_and_not_the_base_weights(llm, bits):
    dec = _decoder(llm, {"bits": bits})
    with torch.no_grad():  # LoRA B starts at 0, which gives LoRA A no gradient
        for n, p in dec.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    frozen = {n: p.detach().clone() for n, p in dec.named_parameters() if not p.requires_grad}
    lora = {n: p.detach().clone() for n, p in dec.named_parameters() if "lora_" in n}
    assert any(".base_layer." in n for n in frozen) and len(lora) == 8
    text, lengths = torch.tensor([[10, 11, 12], [13, -1, -1]]), torch.tensor([3, 1])

    def gradients():
        dec.train()
        dec.zero_grad()
        loss, _ = dec(_embeds(dec.embed_size()), text, lengths)
        loss.backward()
        return {n: p.grad.clone() for n, p in dec.named_parameters() if n in lora and p.grad is not None}

    before = gradients()
    dec.eval()  # a validation or decoding pass between two steps changes nothing of the next step
    assert len(dec.generate(_embeds(dec.embed_size()), [4, 4], beam_size=2)) == 2
    after = gradients()
    assert set(before) == set(after) == set(lora)
    assert all(torch.equal(before[n], after[n]) and before[n].abs().max() > 0 for n in lora)
    torch.optim.SGD([p for p in dec.parameters() if p.requires_grad], lr=0.1).step()
    params = dict(dec.named_parameters())
    assert all(not torch.equal(lora[n], params[n].detach()) for n in lora)
    assert not [n for n, p in frozen.items() if not torch.equal(p, params[n].detach())]


def _write_config(path, pretrained, datadir, llm, **decoder_conf):
    return write_train_config(
        path,
        {**pretrained, "llm": llm},
        datadir,
        decoder_conf=decoder_conf,
        max_epoch=1,
        num_iters_per_epoch=4,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pretrained, datadir, llm):
    """Two tiny AVSR models trained through the task: the LLM in 4 bits (float32 compute), and
    unquantized in bfloat16."""
    root = tmp_path_factory.mktemp("qlora")
    runs = {}
    for name, conf in (("4bit", {"quantization": FOUR_BITS}), ("bf16", {"frozen_dtype": "bfloat16"})):
        cfg = _write_config(root / f"{name}.yaml", pretrained, datadir, llm, **conf)
        SmopAVSRTask.main(cmd=["--config", str(cfg), "--output_dir", str(root / name)])
        runs[name] = root / name
    return runs


def _decode(exp: Path, datadir: Path, out: Path, *extra) -> dict:
    from smop.bin import avsr_inference

    data = []
    for triple in data_triples(datadir, "audiovisual"):
        data += ["--data_path_and_name_and_type", ",".join(triple)]
    avsr_inference.main(
        data
        + ["--output_dir", str(out), "--train_config", str(exp / "config.yaml")]
        + ["--model_file", str(exp / "valid.loss.ave.pth"), "--batch_size", "3", "--beam_size", "2"]
        + ["--num_workers", "0", *extra]
    )
    return dict((line.split(" ", 1) + [""])[:2] for line in (out / "1best_recog" / "text").read_text().splitlines())


def test_checkpoints_hold_only_trained_weights(trained):
    for name in ("4bit", "bf16"):
        state = load_model_state(trained[name] / "valid.loss.ave.pth")
        assert state and all(k.startswith("projector.") or "lora_" in k or ".boundary." in k for k in state), name
    quantized = load_model_state(trained["4bit"] / "valid.loss.ave.pth")
    assert not [k for k in quantized if any(s in k for s in ("base_layer", "absmax", "quant_", "SCB"))]
    assert set(quantized) == set(load_model_state(trained["bf16"] / "valid.loss.ave.pth"))
    assert {v.dtype for v in quantized.values()} == {torch.float32}


def test_a_pack_records_the_quantization_and_decodes_the_same(trained, datadir, llm, tmp_path):
    from smop import Speech2Text
    from smop.bin import pack_model
    from smop.data.loaders import MouthNpyReader, Wav16kReader

    exp = trained["4bit"]
    expected = _decode(exp, datadir, tmp_path / "decode")
    (tmp_path / "decode.yaml").write_text(yaml.safe_dump({"batch_size": 3, "beam_size": 2}))
    pack = tmp_path / "pack"
    pack_model.main(
        ["--exp_dir", str(exp), "--out_dir", str(pack), "--copy_pretrained", "all"]
        + ["--decode_config", str(tmp_path / "decode.yaml")]
    )
    meta = yaml.safe_load((pack / pack_layout.META).read_text())
    assert meta["quantization"] == FOUR_BITS
    config = yaml.safe_load((pack / pack_layout.CONFIG).read_text())
    assert config["decoder_conf"]["quantization"] == FOUR_BITS
    assert "4-bit nf4, double quantization, float32 compute" in (pack / pack_layout.CARD).read_text()
    # The LLM is stored once, as it was given (unquantized); loading quantizes it again.
    llm_dir = pack / config["decoder_conf"]["model_name_or_path"]
    assert sha256_of(llm_dir / "model.safetensors") == sha256_of(Path(llm) / "model.safetensors")
    moved = tmp_path / "elsewhere"
    shutil.move(str(pack), moved)

    s2t = Speech2Text.from_pretrained(str(moved))
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in s2t.model.decoder.llm.modules())
    wav, video = Wav16kReader(str(datadir / "wav.scp")), MouthNpyReader(str(datadir / "video.scp"))
    keys = sorted(wav.keys())
    hyps = s2t(speech=[wav[k] for k in keys], video=[video[k] for k in keys])
    assert {k: h.text for k, h in zip(keys, hyps)} == expected and len(keys) == 6

    from smop.bin import transcribe

    wav_file = sorted((datadir / "media").glob("*.wav"))[0]
    with pytest.raises(SystemExit, match="smop-transcribe: none or a mapping of bits, type"):
        transcribe.main([str(wav_file), "--model", str(moved), "--quantization", "4"])


def test_a_bf16_model_decodes_with_a_4bit_llm_and_the_other_way(trained, datadir, tmp_path, caplog):
    from smop import Speech2Text
    from smop.experiment import DecodeRecord

    caplog.set_level(logging.WARNING, logger="smop.decoders.quantization")
    as_trained = _decode(trained["bf16"], datadir, tmp_path / "bf16")
    assert not [r for r in caplog.records if "note: decoding with" in r.getMessage()]
    out = tmp_path / "bf16_in_4bit"
    in_4bit = _decode(trained["bf16"], datadir, out, "--quantization", "{bits: 4, type: nf4}")
    assert set(in_4bit) == set(as_trained) and all(isinstance(t, str) for t in in_4bit.values())
    notes = [r.getMessage() for r in caplog.records if "note: decoding with" in r.getMessage()]
    assert notes == [
        "note: decoding with the LLM's linear layers in 4-bit nf4, double quantization, bfloat16 compute; the "
        "model was trained with them in bfloat16 (not quantized), so its hypotheses may differ from the trained "
        "model's"
    ]
    assert DecodeRecord.read(out / "decode_config.yaml").quantization == {"bits": 4, "type": "nf4"}
    generation = yaml.safe_load((out / "generation_config.yaml").read_text())
    assert generation["model"]["decoder_conf"]["quantization"]["bits"] == 4

    caplog.clear()
    exp = trained["4bit"]
    s2t = Speech2Text.from_files(str(exp / "config.yaml"), str(exp / "valid.loss.ave.pth"), quantization="none")
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in s2t.model.decoder.llm.modules())
    assert s2t.train_args.decoder_conf["quantization"] is None
    assert [r.getMessage() for r in caplog.records if "note: decoding with" in r.getMessage()] == [
        "note: decoding with the LLM's linear layers in float32 (not quantized); the model was trained with them "
        "in 4-bit nf4, double quantization, float32 compute, so its hypotheses may differ from the trained model's"
    ]


def _problems(tmp_path, pretrained, datadir, llm, **decoder_conf):
    cfg = _write_config(tmp_path / "c.yaml", pretrained, datadir, llm, **decoder_conf)
    args = SmopAVSRTask.get_parser().parse_args(["--config", str(cfg), "--output_dir", str(tmp_path / "exp")])
    with pytest.raises(ConfigError) as err:
        SmopAVSRTask.check_args(args)
    return str(err.value)


def test_config_errors_name_the_fix(tmp_path, pretrained, datadir, llm, monkeypatch):
    msg = _problems(tmp_path, pretrained, datadir, llm, quantization={"bits": 3})
    assert "decoder_conf.quantization.bits: 3 is not one of 4, 8" in msg
    msg = _problems(tmp_path, pretrained, datadir, llm, quantization={"bits": 4, "type": "int4"})
    assert "decoder_conf.quantization.type: 'int4' is not one of nf4, fp4" in msg
    msg = _problems(tmp_path, pretrained, datadir, llm, quantization={"bits": 8, "type": "nf4"})
    assert "decoder_conf.quantization: type, double_quant and compute_dtype are settings of 4 bits" in msg
    msg = _problems(tmp_path, pretrained, datadir, llm, quantization={"bit": 4})
    assert "decoder_conf.quantization: unknown key(s) ['bit']; the keys are bits, type" in msg
    msg = _problems(tmp_path, pretrained, datadir, llm, quantization={"compute_dtype": "fp8"})
    assert "decoder_conf.quantization.compute_dtype: 'fp8' is not one of float32, bfloat16, float16" in msg

    monkeypatch.setattr(quant, "bitsandbytes_available", lambda: False)
    msg = _problems(tmp_path, pretrained, datadir, llm, quantization={"bits": 4})
    assert (
        "decoder_conf.quantization: the LLM in 4 or 8 bits needs bitsandbytes, which is not installed: "
        "pip install smop[quant] (or tools/install.sh --extra quant)"
    ) in msg
    cfg = _write_config(tmp_path / "plain.yaml", pretrained, datadir, llm)  # unquantized: bitsandbytes not needed
    SmopAVSRTask.check_args(
        SmopAVSRTask.get_parser().parse_args(["--config", str(cfg), "--output_dir", str(tmp_path / "exp")])
    )


def test_the_command_line_value(tmp_path, capsys):
    from smop.bin import avsr_inference

    assert quant.cli_value("none") == "none" and quant.cli_value("{bits: 8}") == {"bits": 8}
    with pytest.raises(ValueError, match="none or a mapping of bits, type"):
        quant.cli_value("4")
    with pytest.raises(SystemExit):
        avsr_inference.main(
            ["--output_dir", str(tmp_path), "--data_path_and_name_and_type", "a,speech,wav16k", "--quantization", "4"]
        )
    assert "error: none or a mapping of bits, type, double_quant, compute_dtype" in capsys.readouterr().err


def test_two_processes_train_and_resume_the_4bit_model(tmp_path, pretrained, datadir, llm, trained):
    """torchrun with two gloo ranks (as README's distributed training on CPUs), then a resumed
    epoch: the quantized frozen LLM goes through DDP's start-up broadcast and ESPnet's resume."""
    import os
    import subprocess
    import sys

    cfg = _write_config(tmp_path / "c.yaml", pretrained, datadir, llm, quantization=FOUR_BITS)
    exp = tmp_path / "exp"
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path / "tmp")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "smop.bin.avsr_train", "--config", str(cfg), "--output_dir", str(exp), "--ngpu", "0"]
    cmd += ["--multiprocessing_distributed", "false", "--dist_backend", "gloo"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    state = load_model_state(exp / "valid.loss.ave.pth")
    assert set(state) == set(load_model_state(trained["4bit"] / "valid.loss.ave.pth"))
    SmopAVSRTask.main(cmd=["--config", str(cfg), "--output_dir", str(exp), "--max_epoch", "2", "--resume", "true"])
    assert (exp / "2epoch.pth").is_file()
    resumed = load_model_state(exp / "2epoch.pth")
    assert set(resumed) == set(state) and any(not torch.equal(resumed[k], state[k]) for k in state)
