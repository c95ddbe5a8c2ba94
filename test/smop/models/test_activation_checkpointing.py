"""Activation checkpointing (``gradient_checkpointing`` of the LLM decoder and of the encoders):
the same loss and gradients as without it, and the checkpointed layers keep (almost) nothing for
the backward pass."""

import pytest
import torch
from transformers.modeling_layers import GradientCheckpointingLayer

from smop.bin.avsr_inference import evaluation_loader
from smop.data.inputs import data_triples
from smop.data.loaders import read_scp
from smop.encoders.avhubert.transformer import EncoderLayer
from smop.tasks.avsr import SmopAVSRTask
from tiny_experiment import write_train_config

STACKS = ("decoder", "audio_encoder", "video_encoder")


def _batch(args, datadir):
    data = data_triples(datadir, "audiovisual", text=True)
    keys, batch = next(iter(evaluation_loader(data, args, sorted(read_scp(str(datadir / "text"))), batch_size=3)))
    return batch


def step(tmp_path, pretrained, datadir, checkpointing: bool, fine_tune_encoders: bool):
    """Loss, gradients of every trained parameter, and bytes of activations kept for backward by
    the transformer layers of each stack (LLM, Whisper, AV-HuBERT)."""
    enc = {"freeze": not fine_tune_encoders, "gradient_checkpointing": checkpointing and fine_tune_encoders}
    cfg = write_train_config(
        tmp_path / f"c{int(checkpointing)}.yaml",
        pretrained,
        datadir,
        audio_encoder_conf={**enc, "length_aware": True},
        video_encoder_conf=enc,
        decoder_conf={"gradient_checkpointing": checkpointing, "lora_dropout": 0.1},
    )
    args = SmopAVSRTask.get_parser().parse_args(["--config", str(cfg), "--output_dir", str(tmp_path / "exp")])
    torch.manual_seed(0)
    model = SmopAVSRTask.build_model(args).train()
    batch = _batch(args, datadir)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept = dict.fromkeys(STACKS, 0)
    inside = []  # the stack whose layer is running

    def leave(module, args, output):
        inside.pop()

    for name, module in model.named_modules():
        if isinstance(module, (GradientCheckpointingLayer, EncoderLayer)):
            module.register_forward_pre_hook(lambda module, args, stack=name.split(".")[0]: inside.append(stack))
            module.register_forward_hook(leave)

    def pack(t):  # called for every tensor saved for backward, except inside a checkpointed region
        if inside and t.untyped_storage().data_ptr() not in weights:
            kept[inside[-1]] += t.untyped_storage().nbytes()
        return t

    torch.manual_seed(1)  # the same dropout masks in both runs (checkpointing replays the RNG state)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _, _ = model(**batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    return float(loss.detach()), grads, kept


@pytest.mark.parametrize("fine_tune_encoders", [False, True], ids=["frozen encoders", "fine-tuned encoders"])
def test_checkpointing_gives_the_same_loss_and_gradients(tmp_path, pretrained, datadir, fine_tune_encoders):
    loss0, grads0, kept0 = step(tmp_path, pretrained, datadir, False, fine_tune_encoders)
    loss1, grads1, kept1 = step(tmp_path, pretrained, datadir, True, fine_tune_encoders)
    assert loss1 == pytest.approx(loss0, rel=1e-6)
    assert set(grads1) == set(grads0)
    assert any(n.startswith("audio_encoder.") for n in grads0) == fine_tune_encoders
    assert any(n.startswith("video_encoder.") for n in grads0) == fine_tune_encoders
    for n in grads0:
        torch.testing.assert_close(grads1[n], grads0[n], rtol=1e-4, atol=1e-6, msg=n)
    trained = ["decoder"] + (["audio_encoder", "video_encoder"] if fine_tune_encoders else [])
    for stack in STACKS:  # frozen encoders run without gradients: they keep nothing either way
        assert kept0[stack] > 0 if stack in trained else kept0[stack] == 0, (stack, kept0)
        # a checkpointed layer keeps at most what its recomputation starts from (here 0-7 %)
        assert kept1[stack] <= 0.1 * kept0[stack], (stack, kept0, kept1)
