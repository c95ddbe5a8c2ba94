"""Case 10: the frozen LLM in 4 and 8 bits (decoder_conf.quantization, QLoRA) against bf16:
its weights' memory, a training step's peak memory and decoding time.

The decoder alone at Llama-3.2-1B's size (random weights; the part quantization changes), LoRA
r=64 on q_proj/v_proj as the recipes train it, each setting in its own process (peak memory is per
process). Its input is what the projector hands it: modality embeddings of utterances of 5 s at
the recipes' compression rates (audio 4, video 2: 12.5 tokens a second each) with 24-token
transcripts, 1 utterance per step on a CPU, the LRS3 recipe's step on a GPU. Embeddings and the
output head stay bf16 in every setting (Llama-3.2-1B ties them: 0.49 GiB of its 2.3 GiB);
quantized layers compute in float32 on a CPU (bf16 is emulated there) and bf16 on a GPU.

Frozen weight memory counts every frozen tensor of the LLM once (tied ones once), the
quantization constants (absmax, code books, int8 scales) included.

    python -m bench.llm_quantization [--root /tmp/smop_real_models] [--device cuda]
"""

import argparse
import json
import math
import time
from pathlib import Path
from typing import List, Optional

import torch

from bench.common import Row, gib, parser, report, run_workers
from bench.device import Device
from bench.real_sizes import lrs3_training_batch, real_size_llm

SETTINGS = ("bf16", "4bit", "8bit")
TOKENS_PER_SECOND = 12.5  # per modality: Whisper's 50 Hz / 4, video's 25 fps / 2
NEW_TOKENS = 8


def quantization(setting: str, device: Device) -> Optional[dict]:
    if setting == "4bit":
        return {"bits": 4, "type": "nf4", "double_quant": True, "compute_dtype": device.frozen_dtype("float32")}
    return {"bits": 8} if setting == "8bit" else None


def frozen_bytes(module: torch.nn.Module) -> int:
    """Bytes of the frozen state: parameters that do not train and the quantization constants that
    bitsandbytes keeps beside its weights (its state dict names them), each storage once."""
    trained = {n for n, p in module.named_parameters() if p.requires_grad}
    seen, total = set(), 0
    for name, t in torch.nn.Module.state_dict(module, keep_vars=True).items():
        if name in trained or not isinstance(t, torch.Tensor):
            continue
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def worker(llm: str, setting: str, batch: int, seconds: float, device: Device, amp: bool) -> dict:
    from smop.decoders.hf_causal_lm_decoder import HFCausalLMDecoder

    torch.manual_seed(0)
    dec = HFCausalLMDecoder(
        ["audio", "video"],
        llm,
        lora_r=64,
        lora_alpha=8,
        frozen_dtype="bfloat16",
        quantization=quantization(setting, device),
    )
    dec = dec.to(device.name).train()
    frozen = frozen_bytes(dec.llm)
    n = math.ceil(seconds * TOKENS_PER_SECOND)
    g = torch.Generator().manual_seed(0)
    # The projector's output stands in as a trained leaf: the LoRA gradients flow back through the LLM to it.
    embeds = {
        m: (
            torch.randn(batch, n, dec.embed_size(), generator=g).to(device.name).requires_grad_(),
            torch.full((batch,), n),
        )
        for m in ("audio", "video")
    }
    text = torch.randint(3, 250, (batch, 24), generator=g).to(device.name)
    lengths = torch.full((batch,), 24, device=device.name)
    params = [p for p in dec.parameters() if p.requires_grad] + [e for e, _ in embeds.values()]
    opt = torch.optim.AdamW(params, lr=1e-4)
    step = device.training_step(lambda: dec(embeds, text, lengths)[0], opt, amp)
    measured = device.measure_steps(step)
    resting, peak, step_s = measured["resting"], measured["peak"], measured["seconds"]
    dec.eval()
    one = {m: (e[:1].detach(), n_[:1]) for m, (e, n_) in embeds.items()}
    with torch.no_grad():
        dec.generate(one, [1])  # warm-up
        device.sync()
        t = time.perf_counter()
        dec.generate(one, [NEW_TOKENS - 1])  # EosAtBudget: the budget plus its EOS
        device.sync()
    decode_s = time.perf_counter() - t
    return dict(setting=setting, frozen=frozen, peak=peak, resting=resting, step_s=step_s, decode_s=decode_s)


def run(
    root: Path,
    seconds: float = 5.0,
    batch: Optional[int] = None,
    device: Device = Device(),
    llm: Optional[str] = None,
) -> List[Row]:
    """``batch``: utterances per step (default: 1 on a CPU, the LRS3 recipe's step on a GPU);
    ``llm``: another LLM directory than the real-size one (the tests' tiny Llama)."""
    llm = llm or real_size_llm(Path(root) / "llama-3.2-1b")
    lrs3 = lrs3_training_batch(seconds)
    batch = batch or (lrs3["utterances"] if device.gpu else 1)
    amp = device.gpu and lrs3["use_amp"]
    args = ["--llm", llm, "--batch", str(batch), "--seconds", str(seconds), "--device", device.name]
    res = run_workers("bench.llm_quantization", SETTINGS, args + (["--amp"] if amp else []))
    base = res["bf16"]
    compute = device.frozen_dtype("float32")
    what = f"Llama-3.2-1B decoder, batch {batch} x {seconds:g} s AVSR, LoRA r=64, AdamW" + (
        ", bf16 autocast" if amp else ""
    )
    mem = device.memory_kind()
    rows = []
    for setting, label in (("4bit", f"4-bit NF4 (double quant, {compute} compute)"), ("8bit", "8-bit LLM.int8")):
        r = res[setting]
        ratio = r["frozen"] / base["frozen"]
        rows += [
            Row(
                f"10 frozen LLM weights, {label} vs bf16",
                gib(r["frozen"]),
                f"{gib(base['frozen'])} (bf16)",
                ratio,
                "≤ 0.45" if setting == "4bit" else "reported",
                ratio <= 0.45 if setting == "4bit" else None,
                "embeddings and output head (tied) stay bf16",
            ),
            Row(
                f"10 {mem} of a training step, {label} vs bf16 ({what})",
                gib(r["peak"]),
                f"{gib(base['peak'])} (bf16)",
                r["peak"] / base["peak"],
                "reported",
                None,
                f"in use before the step {gib(r['resting'])} / {gib(base['resting'])} (bf16)",
            ),
            Row(
                f"10 training step time, {label} vs bf16 ({what})",
                f"{r['step_s']:.2f} s",
                f"{base['step_s']:.2f} s (bf16)",
                r["step_s"] / base["step_s"],
                "reported",
                None,
            ),
            Row(
                f"10 decode time, {label} vs bf16 (1 x {seconds:g} s AVSR, {NEW_TOKENS} new tokens, greedy)",
                f"{r['decode_s']:.2f} s",
                f"{base['decode_s']:.2f} s (bf16)",
                r["decode_s"] / base["decode_s"],
                "reported",
                None,
            ),
        ]
    return rows


def main(cmd=None):
    p = parser(__doc__)
    p.add_argument("--batch", type=int, help="utterances per step (default: 1 on a CPU, the LRS3 step on a GPU)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each utterance")
    p.add_argument("--worker", choices=SETTINGS, help=argparse.SUPPRESS)
    p.add_argument("--llm", help=argparse.SUPPRESS)
    p.add_argument("--amp", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(cmd)
    if args.worker:
        print(json.dumps(worker(args.llm, args.worker, args.batch, args.seconds, Device(args.device), args.amp)))
        return
    print(report(run(args.root, args.seconds, args.batch, Device(args.device))))


if __name__ == "__main__":
    main()
