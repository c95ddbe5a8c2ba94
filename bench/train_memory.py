"""Cases 4 and 5: training memory with the frozen parts in bf16 against fp32, and the size of a
saved epoch checkpoint against the bytes of the trained parameters.

Each dtype runs in its own process (peak memory is per process): the AVSR DEDR model at the real
sizes (Whisper-medium, AV-HuBERT Large, Llama-3.2-1B; random weights), AdamW on the trained
parameters, batches of 2 utterances of 5 s with 24-token transcripts. After a warm-up step the
kernel's peak-RSS mark is reset, and the next steps give the peak and the throughput. The bf16
process then saves ``model.state_dict()`` as ESPnet saves ``<N>epoch.pth``.

    python -m bench.train_memory [--root /tmp/smop_real_models]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

import torch

from bench.common import (
    Row,
    gib,
    parser,
    peak_rss_bytes,
    report,
    reset_peak_rss,
    rss_bytes,
)
from bench.decode_timing import synthetic_batch
from bench.real_sizes import build_model, real_size_models


def worker(root: Path, dtype: str, steps: int, batch: int) -> dict:
    torch.manual_seed(0)
    model = build_model(real_size_models(root), "smop", "dedr", frozen_dtype=dtype).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98), weight_decay=0.1)
    inputs = synthetic_batch(batch, 5.0)
    text = torch.randint(3, 250, (batch, 24))

    def step():
        loss, _, _ = model(text=text, text_lengths=torch.full((batch,), 24), **inputs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: optimizer state and allocator pools exist from here on
    resting = rss_bytes()
    reset_peak_rss()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - t
    frozen = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    trained = sum(p.numel() for p in params) * 16  # fp32 weight, gradient and AdamW's two moments
    out = dict(dtype=dtype, peak=peak_rss_bytes(), resting=resting, utt_per_s=steps * batch / elapsed,
               frozen=frozen, trained_state=trained)
    if dtype == "bfloat16":
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "1epoch.pth"
            torch.save(model.state_dict(), path)
            out["checkpoint_bytes"] = path.stat().st_size
        out["trainable_bytes"] = sum(p.numel() * p.element_size() for p in params)
        out["full_state_bytes"] = sum(v.numel() * v.element_size() for v in torch.nn.Module.state_dict(model).values())
    return out


def run(root: Path, steps: int = 2, batch: int = 2) -> List[Row]:
    real_size_models(root)  # written once, before two processes race for it
    res = {}
    for dtype in ("float32", "bfloat16"):
        proc = subprocess.run([sys.executable, "-m", "bench.train_memory", "--worker", dtype, "--root", str(root),
                               "--steps", str(steps), "--batch", str(batch)],
                              capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            raise RuntimeError(f"train_memory worker ({dtype}) failed:\n{proc.stderr[-3000:]}")
        res[dtype] = json.loads(proc.stdout.strip().splitlines()[-1])
    f32, b16 = res["float32"], res["bfloat16"]
    ratio = b16["peak"] / f32["peak"]
    what = f"AVSR DEDR, batch {batch} x 5 s, AdamW"
    rows = [
        Row(f"4 peak memory of a training step, frozen parts bf16 vs fp32 ({what})", gib(b16["peak"]),
            f"{gib(f32['peak'])} (fp32)", ratio, "≤ 0.6", ratio <= 0.6,
            f"where it goes (bf16 / fp32): frozen weights {gib(b16['frozen'])} / {gib(f32['frozen'])}; trained "
            f"parameters with gradients and AdamW moments (fp32 in both) {gib(b16['trained_state'])}; the rest "
            f"(activations, runtime) {gib(b16['peak'] - b16['frozen'] - b16['trained_state'])} / "
            f"{gib(f32['peak'] - f32['frozen'] - f32['trained_state'])}; resident before the step "
            f"{gib(b16['resting'])} / {gib(f32['resting'])}"),
        Row(f"4 training throughput, bf16 vs fp32 ({what})", f"{b16['utt_per_s']:.3f} utt/s",
            f"{f32['utt_per_s']:.3f} utt/s (fp32)", b16["utt_per_s"] / f32["utt_per_s"], "reported", None),
    ]
    c = b16["checkpoint_bytes"] / b16["trainable_bytes"]
    rows.append(Row("5 epoch checkpoint size vs trained parameters", f"{b16['checkpoint_bytes'] / 2**20:.1f} MiB",
                    f"{b16['trainable_bytes'] / 2**20:.1f} MiB (trained parameters)", c, "≤ 1.2", c <= 1.2,
                    f"ESPnet's default would save the whole model: {gib(b16['full_state_bytes'])}"))
    return rows


def main(cmd=None):
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--worker", choices=["float32", "bfloat16"], help=argparse.SUPPRESS)
    args = p.parse_args(cmd)
    if args.worker:
        print(json.dumps(worker(args.root, args.worker, args.steps, args.batch)))
        return
    rows = run(args.root, args.steps, args.batch)
    print(report(rows))


if __name__ == "__main__":
    main()
