"""Run the benchmarks and write their blocks into bench/RESULTS.md.

    python -m bench [--device cuda] [--root /tmp/smop_real_models] [--only sparse_dispatch,projector_cost,...]

The real-size models (random weights) are written once under --root (about 6 GB). With
--device cuda every case runs its models on the GPU (frozen parts bf16) and the figures go to the
GPU section of RESULTS.md; each case run replaces only its own block there.
"""

import datetime
import importlib
import inspect
import shlex
import sys
import time
import traceback
from pathlib import Path

from bench.common import Row, parser, table
from bench.device import Device
from bench.results import block_body, read_blocks, render
from smop.utils.io import atomic_write
from smop.utils.versions import machine, versions

CASES = (
    "sparse_dispatch",
    "projector_cost",
    "batched_decoding",
    "decode_throughput",
    "train_memory",
    "whisper_length_aware",
    "data_prep_speed",
    "landmark_speed",
    "long_form",
    "llm_quantization",
    "rate_pairs",
)
# A case that runs on one device only, and why.
ONLY_ON = {
    "decode_throughput": ("cuda", "a GPU case: beam 15 over batches of 32 takes hours on 2 CPU cores"),
    "data_prep_speed": ("cpu", "ffmpeg and OpenCV on one CPU core, no model"),
    "landmark_speed": ("cpu", "dlib's detectors on one CPU core, no model"),
}


def write(path: Path, blocks: dict) -> None:
    with atomic_write(path) as f:
        f.write(render(blocks, list(CASES), ONLY_ON))


def main(cmd=None):
    p = parser(__doc__)
    p.add_argument("--only", default=",".join(CASES), help="comma-separated subset of " + ", ".join(CASES))
    p.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    args = p.parse_args(cmd)
    names = args.only.split(",")
    for name in names:
        if name not in CASES:
            p.error(f"unknown case {name!r}; choose from {', '.join(CASES)}")
    try:
        device = Device(args.device)
    except RuntimeError as e:
        p.error(str(e))
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if cmd is None else cmd)])
    v = versions()
    blocks = read_blocks(args.output.read_text(encoding="utf-8")) if args.output.exists() else {}
    failed = []
    for name in names:
        if ONLY_ON.get(name, (device.name,))[0] != device.name:
            print(f"{name}: skipped on {device.name} ({ONLY_ON[name][1]})", flush=True)
            continue
        module = importlib.import_module(f"bench.{name}")
        # A case takes the device if its models run on one, the root if it builds the real-size models.
        params = inspect.signature(module.run).parameters
        kwargs = {k: v for k, v in (("device", device), ("root", args.root)) if k in params}
        t = time.perf_counter()
        try:
            rows = module.run(**kwargs)
        except Exception as e:  # report the others; the failure is in the table and the exit status
            traceback.print_exc()
            rows = [Row(name, f"failed: {type(e).__name__}: {str(e).splitlines()[-1] if str(e) else ''}", met=False)]
            failed.append(name)
        provenance = (
            f"measured {datetime.datetime.now():%Y-%m-%d %H:%M} in {time.perf_counter() - t:.0f} s on "
            f"{machine()}, {device.describe()}; `{command}`; smop git `{v['smop_git']}`; torch "
            f"`{v['torch']}`, transformers `{v['transformers']}`, peft `{v['peft']}`"
        )
        blocks[(device.name, name)] = block_body(name, rows, provenance)
        print(table(rows), flush=True)
        write(args.output, blocks)  # after every case: a crash later keeps the figures so far
    write(args.output, blocks)
    print(f"wrote {args.output}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
