"""Case 8: end-to-end AVSR decoding throughput by batch size (a GPU case).

The AVSR DEDR model at the real sizes (Whisper-medium, AV-HuBERT Large, Llama-3.2-1B; random
weights; frozen parts bf16) decodes 5 s utterances with the LRS3 recipe's beam (15) at batch 1,
8 and 32, generating a fixed number of tokens (about a 5 s LRS3 sentence), encoders included.
Utterances per second; batch 8 should give at least 10x batch 1 on a GPU, where a batch shares
every weight read. On a CPU the full run skips it (minutes per utterance); the tests run it with
tiny models.

    python -m bench.decode_throughput --device cuda [--root /tmp/smop_real_models]
"""

import time
from pathlib import Path
from typing import List, Optional

import torch

from bench.common import Row, parser, report
from bench.decode_timing import synthetic_batch, timed_decode
from bench.device import Device
from bench.real_sizes import build_model, real_size_models


def run(
    root: Path,
    batches=(1, 8, 32),
    seconds: float = 5.0,
    new_tokens: int = 24,
    beam_size: int = 15,
    repeats: int = 3,
    device: Device = Device(),
    paths: Optional[dict] = None,
) -> List[Row]:
    dtype = device.frozen_dtype("bfloat16")
    torch.manual_seed(0)
    model = build_model(paths or real_size_models(root), "smop", "dedr", frozen_dtype=dtype).eval().to(device.name)
    rates = {}
    for b in batches:
        inputs = synthetic_batch(b, seconds, seed=b, device=device.name)
        timed_decode(model, inputs, new_tokens, beam_size, device.sync)  # warm-up (allocator, kernels)
        spans = []
        for _ in range(repeats):
            t = time.perf_counter()
            out = timed_decode(model, inputs, new_tokens, beam_size, device.sync)
            spans.append(time.perf_counter() - t)
            assert len(out["hyps"]) == b
        rates[b] = b / sorted(spans)[len(spans) // 2]
    what = f"AVSR DEDR, {seconds:g} s utterances, beam {beam_size}, {new_tokens} tokens, {dtype}"
    rows = []
    for b in batches:
        ratio = rates[b] / rates[batches[0]]
        target = "batch 8 ≥ 10× batch 1" if b == 8 else ""
        rows.append(
            Row(
                f"8 end-to-end decoding, batch {b} ({what})",
                f"{rates[b]:.2f} utt/s",
                f"{rates[batches[0]]:.2f} utt/s (batch {batches[0]})",
                ratio,
                target,
                ratio >= 10 if b == 8 else None,
            )
        )
    return rows


def main(cmd=None):
    p = parser(__doc__)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(cmd)
    print(report(run(args.root, repeats=args.repeats, device=Device(args.device))))


if __name__ == "__main__":
    main()
