"""Case 1: what the SMoP projector costs at decoding time against the linear projector.

One AVSR model at the real sizes (Whisper-medium, AV-HuBERT Large, Llama-3.2-1B; random
weights) decodes one batch of fixed 5 s utterances, generating a fixed number of tokens, with
each projector swapped in (same encoders and LLM). Runs are interleaved; medians are reported,
with the share of time per stage and the trainable / active parameter counts.

    python -m bench.projector_cost [--root /tmp/smop_real_models] [--device cuda]
"""

import functools
import statistics
from pathlib import Path
from typing import List, Optional

from bench.common import Row, repeated_case_main
from bench.decode_timing import STAGES, rotated_runs, synthetic_batch, timed_decode
from bench.device import Device
from bench.param_counts import counts
from bench.real_sizes import build_projector, decoding_model

PROJECTORS = [
    ("linear", "linear", None),
    ("smop DEDR", "smop", "dedr"),
    ("smop JEJR", "smop", "jejr"),
    ("smop JEDR", "smop", "jedr"),
]


def run(
    root: Path,
    batch: int = 2,
    seconds: float = 5.0,
    new_tokens: int = 12,
    repeats: int = 3,
    dtype: Optional[str] = None,
    device: Device = Device(),
    paths: Optional[dict] = None,
) -> List[Row]:
    """Each projector swapped into one model (see ``decoding_model`` for ``dtype`` and ``paths``)."""
    model, dtype = decoding_model(root, paths, device, dtype, "linear")
    projectors = {
        name: (model.projector if kind == "linear" else build_projector(model, kind, layout)).eval()
        for name, kind, layout in PROJECTORS
    }
    for p in projectors.values():
        p.to(device.name)
    inputs = synthetic_batch(batch, seconds, device=device.name)

    def decode(name):
        model.projector = projectors[name]
        return timed_decode(model, inputs, new_tokens, sync=device.sync)

    runs = rotated_runs({name: functools.partial(decode, name) for name in projectors}, repeats, new_tokens)
    model.projector = projectors["linear"]

    rows, base = [], None
    what = f"{batch} x {seconds:g} s AVSR, {new_tokens} new tokens, greedy, {dtype}"
    for name, _, _ in PROJECTORS:
        total = statistics.median(r["total"] for r in runs[name])
        base = base or total
        model.projector = projectors[name]
        c = counts(model)
        shares = {s: statistics.median(r[s] for r in runs[name]) / total for s in STAGES}
        note = ", ".join(f"{s} {100 * v:.1f} %" for s, v in shares.items())
        rows.append(
            Row(
                f"1 decode time, {name} ({what})",
                f"{total:.2f} s",
                f"{base:.2f} s (linear)",
                total / base,
                "≤ 1.02",
                total / base <= 1.02 if name != "linear" else None,
                note,
            )
        )
        rows.append(
            Row(
                f"1 parameters, {name}",
                f"{c['trainable']:,} trainable; projector {c['projector']:,}, "
                f"active per token {c['active_per_token']:,}",
                "",
                None,
                "",
                None,
            )
        )
    return rows


def main(cmd=None):
    repeated_case_main(__doc__, run, cmd)


if __name__ == "__main__":
    main()
