"""Cases 4 and 5: training memory and speed with the frozen parts in bf16 against fp32, with
activation checkpointing of the LLM against without, and the size of a saved epoch checkpoint
against the bytes of the trained parameters.

Each setting runs in its own process (peak memory is per process): the AVSR DEDR model at the
real sizes (Whisper-medium, AV-HuBERT Large, Llama-3.2-1B; random weights), AdamW on the trained
parameters, utterances of 5 s with 24-token transcripts: 2 per step on a CPU; on a GPU the LRS3
recipe's step (conf/train_dedr.yaml: batch_bins 4000 = 32 utterances, bf16 autocast as its
use_amp). After a warm-up step the peak-memory mark is reset (the process's resident memory on a
CPU, the CUDA allocator's on a GPU), and the next steps give the peak and the throughput. The bf16
process then saves ``model.state_dict()`` as ESPnet saves ``<N>epoch.pth``.

Frozen encoders run without gradients and keep no activations, so checkpointing them changes
nothing here; the LLM, which the LoRA gradients flow through, is the part that keeps them.

    python -m bench.train_memory [--root /tmp/smop_real_models] [--device cuda]
"""

import argparse
import json
import tempfile
from pathlib import Path
from typing import List, Optional

import torch

from bench.common import Row, gib, parser, report, run_workers
from bench.decode_timing import synthetic_batch
from bench.device import Device
from bench.real_sizes import build_model, lrs3_training_batch, real_size_models

# (frozen dtype, activation checkpointing of the LLM)
SETTINGS = {"fp32": ("float32", False), "bf16": ("bfloat16", False), "bf16+ckpt": ("bfloat16", True)}


def worker(paths: dict, setting: str, steps: int, batch: int, seconds: float, device: Device, amp: bool) -> dict:
    dtype, checkpointing = SETTINGS[setting]
    torch.manual_seed(0)
    model = build_model(paths, "smop", "dedr", frozen_dtype=dtype, gradient_checkpointing=checkpointing)
    model = model.train().to(device.name)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98), weight_decay=0.1)
    inputs = synthetic_batch(batch, seconds, device=device.name)
    text = torch.randint(3, 250, (batch, 24), device=device.name)
    text_lengths = torch.full((batch,), 24, device=device.name)
    step = device.training_step(lambda: model(text=text, text_lengths=text_lengths, **inputs)[0], opt, amp)
    measured = device.measure_steps(step, steps)
    frozen = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    trained = sum(p.numel() for p in params) * 16  # fp32 weight, gradient and AdamW's two moments
    out = dict(
        setting=setting,
        peak=measured["peak"],
        resting=measured["resting"],
        utt_per_s=steps * batch / measured["seconds"],
        frozen=frozen,
        trained_state=trained,
    )
    if setting == "bf16":
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "1epoch.pth"
            torch.save(model.state_dict(), path)
            out["checkpoint_bytes"] = path.stat().st_size
        out["trainable_bytes"] = sum(p.numel() * p.element_size() for p in params)
        out["full_state_bytes"] = sum(v.numel() * v.element_size() for v in torch.nn.Module.state_dict(model).values())
    return out


def run(
    root: Path,
    steps: int = 2,
    batch: Optional[int] = None,
    seconds: float = 5.0,
    device: Device = Device(),
    paths: Optional[dict] = None,
) -> List[Row]:
    """``batch``: utterances of ``seconds`` per step (default: 2 on a CPU, the LRS3 recipe's step on a GPU)."""
    paths = paths or real_size_models(root)  # written once, before the processes race for it
    lrs3 = lrs3_training_batch(seconds)
    batch = batch or (lrs3["utterances"] if device.gpu else 2)
    amp = device.gpu and lrs3["use_amp"]
    args = ["--models", json.dumps(paths), "--steps", str(steps), "--batch", str(batch), "--seconds", str(seconds)]
    args += ["--device", device.name] + (["--amp"] if amp else [])
    res = run_workers("bench.train_memory", SETTINGS, args)
    f32, b16, ckpt = res["fp32"], res["bf16"], res["bf16+ckpt"]
    where = "per GPU, the LRS3 recipe's step: " if device.gpu else ""
    what = f"AVSR DEDR, {where}batch {batch} x {seconds:g} s, AdamW" + (", bf16 autocast" if amp else "")
    mem = device.memory_kind()

    def rest(r):
        return gib(r["peak"] - r["frozen"] - r["trained_state"])

    ratio = b16["peak"] / f32["peak"]
    rows = [
        Row(
            f"4 {mem} of a training step, frozen parts bf16 vs fp32 ({what})",
            gib(b16["peak"]),
            f"{gib(f32['peak'])} (fp32)",
            ratio,
            "≤ 0.6",
            ratio <= 0.6,
            f"where it goes (bf16 / fp32): frozen weights {gib(b16['frozen'])} / {gib(f32['frozen'])}; trained "
            f"parameters with gradients and AdamW moments (fp32 in both) {gib(b16['trained_state'])}; the rest "
            f"(activations, runtime) {rest(b16)} / {rest(f32)}; in use before the step "
            f"{gib(b16['resting'])} / {gib(f32['resting'])}",
        ),
        Row(
            f"4 training throughput, bf16 vs fp32 ({what})",
            f"{b16['utt_per_s']:.3f} utt/s",
            f"{f32['utt_per_s']:.3f} utt/s (fp32)",
            b16["utt_per_s"] / f32["utt_per_s"],
            "reported",
            None,
        ),
    ]
    ratio = ckpt["peak"] / f32["peak"]
    rows += [
        Row(
            f"4 {mem} of a training step, bf16 + LLM activation checkpointing vs fp32 ({what})",
            gib(ckpt["peak"]),
            f"{gib(f32['peak'])} (fp32)",
            ratio,
            "≤ 0.6",
            ratio <= 0.6,
            f"the rest (activations, runtime) {rest(ckpt)}, against {rest(b16)} without checkpointing",
        ),
        Row(
            f"4 {mem} of a training step, bf16 with vs without LLM activation checkpointing ({what})",
            gib(ckpt["peak"]),
            f"{gib(b16['peak'])} (bf16)",
            ckpt["peak"] / b16["peak"],
            "reported",
            None,
        ),
        Row(
            f"4 training throughput, bf16 with vs without LLM activation checkpointing ({what})",
            f"{ckpt['utt_per_s']:.3f} utt/s",
            f"{b16['utt_per_s']:.3f} utt/s (bf16)",
            ckpt["utt_per_s"] / b16["utt_per_s"],
            "reported",
            None,
        ),
    ]
    c = b16["checkpoint_bytes"] / b16["trainable_bytes"]
    rows.append(
        Row(
            "5 epoch checkpoint size vs trained parameters",
            f"{b16['checkpoint_bytes'] / 2**20:.1f} MiB",
            f"{b16['trainable_bytes'] / 2**20:.1f} MiB (trained parameters)",
            c,
            "≤ 1.2",
            c <= 1.2,
            f"ESPnet's default would save the whole model: {gib(b16['full_state_bytes'])}",
        )
    )
    return rows


def main(cmd=None):
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch", type=int, help="utterances per step (default: 2 on a CPU, the LRS3 step on a GPU)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each utterance")
    p.add_argument("--worker", choices=sorted(SETTINGS), help=argparse.SUPPRESS)
    p.add_argument("--models", type=json.loads, help=argparse.SUPPRESS)
    p.add_argument("--amp", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(cmd)
    if args.worker:
        print(
            json.dumps(
                worker(args.models, args.worker, args.steps, args.batch, args.seconds, Device(args.device), args.amp)
            )
        )
        return
    print(report(run(args.root, args.steps, args.batch, args.seconds, Device(args.device))))


if __name__ == "__main__":
    main()
