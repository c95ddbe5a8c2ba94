"""Case 11: what an elastic model's rate pair saves at decoding time.

One elastic AVSR model at the real sizes (Whisper-medium, AV-HuBERT Large, Llama-3.2-1B; random
weights; SMoP DEDR shared across the rates) with Omni-AVSR's rates, audio {4, 16} x video {2, 5},
decodes one batch of fixed 5 s utterances at each rate pair, generating a fixed number of tokens.
Runs are interleaved and rotated; medians are reported as ratios to (4, 2), with the LLM input
tokens per second of speech and each stage's share of the time.

    python -m bench.rate_pairs [--root /tmp/smop_real_models] [--device cuda]
"""

import functools
import math
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from bench.common import Row, repeated_case_main
from bench.decode_timing import STAGES, rotated_runs, synthetic_batch, timed_decode
from bench.device import Device
from bench.real_sizes import decoding_model
from smop.models.elastic import FRAMES_PER_SECOND, pair_name, rate_grid, tokens_per_second

RATES = {"audio": (4, 16), "video": (2, 5)}  # Omni-AVSR's (train_OmniAVSR.py --is-matryoshka)
TARGET = 1.5  # (16, 5) at least this many times faster than (4, 2), at batch 8
PROJECTOR_SHARE = 0.02  # the projector under this share of the decode time at every pair


def run(
    root: Path,
    batch: int = 8,
    seconds: float = 5.0,
    new_tokens: int = 12,
    repeats: int = 2,
    rates: Dict[str, Sequence[int]] = RATES,
    dtype: Optional[str] = None,
    device: Device = Device(),
    paths: Optional[dict] = None,
) -> List[Row]:
    """One elastic model decoding at each pair of ``rates`` (see ``decoding_model`` for ``dtype`` and ``paths``)."""
    model, dtype = decoding_model(root, paths, device, dtype, "smop", "dedr", rates=rates)
    inputs = synthetic_batch(batch, seconds, device=device.name)
    pairs = rate_grid(rates)
    names = [pair_name(p) for p in pairs]
    runs = rotated_runs(
        {
            name: functools.partial(timed_decode, model, inputs, new_tokens, sync=device.sync, rates=pair)
            for name, pair in zip(names, pairs)
        },
        repeats,
        new_tokens,
    )

    rows, base = [], None
    what = f"{batch} x {seconds:g} s AVSR, {new_tokens} new tokens, greedy, {dtype}"
    slowest, fastest = pairs[0], pairs[-1]  # (4, 2) and (16, 5): the target's pair
    for pair, name in zip(pairs, names):
        total = statistics.median(r["total"] for r in runs[name])
        base = base or total
        shares = {s: statistics.median(r[s] for r in runs[name]) / total for s in STAGES}
        tokens = tokens_per_second(pair)
        measured = runs[name][0]["tokens"]
        expected = {m: math.ceil(seconds * FRAMES_PER_SECOND[m] / r) for m, r in pair.items()}  # the rates reached
        assert measured == expected, (name, measured, expected)
        speedup = base / total
        rows.append(
            Row(
                f"11 decode time at audio {pair['audio']} / video {pair['video']} ({what})",
                f"{total:.2f} s; {sum(tokens.values()):g} LLM tokens/s",
                f"{base:.2f} s; {sum(tokens_per_second(slowest).values()):g} tokens/s (4, 2)",
                speedup,
                f">= {TARGET}x faster; projector < {100 * PROJECTOR_SHARE:g} %" if pair == fastest else "",
                (speedup >= TARGET and shares["projector"] < PROJECTOR_SHARE) if pair == fastest else None,
                ", ".join(f"{s} {100 * v:.1f} %" for s, v in shares.items()),
            )
        )
    return rows


def main(cmd=None):
    repeated_case_main(__doc__, run, cmd)


if __name__ == "__main__":
    main()
