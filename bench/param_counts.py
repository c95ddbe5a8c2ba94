"""Trainable and active parameters of each projector at Llama-3.2-1B / Whisper-medium /
AV-HuBERT-large sizes (E=4, k=2), built through SmopAVSRTask from random-weight models.

    python -m bench.param_counts [--root /tmp/smop_real_models]
"""

import torch

from bench.common import parser
from bench.real_sizes import build_model, real_size_models

CASES = [("linear", None), ("smop", "jejr"), ("smop", "dedr"), ("smop", "jedr")]


def counts(model):
    proj = sum(p.numel() for p in model.projector.parameters())
    lora = sum(p.numel() for n, p in model.decoder.named_parameters() if "lora_" in n)
    marks = sum(p.numel() for p in model.decoder.boundary.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    active = proj
    if hasattr(model.projector, "pools"):
        # per token only k of E experts run: active = routers + k/E of each pool
        pools = sum(p.numel() for p in model.projector.pools.parameters())
        active = proj - pools + pools * model.projector.top_k / model.projector.num_experts
    return dict(
        projector=proj, active_per_token=int(active), lora=lora, markers=marks, trainable=trainable, total=total
    )


def main(cmd=None):
    p = parser(__doc__)
    args = p.parse_args(cmd)
    paths = real_size_models(args.root)
    print("| projector | projector params | active per token | LoRA | markers | trainable | total |")
    print("|---|---|---|---|---|---|---|")
    for projector, layout in CASES:
        with torch.no_grad():
            c = counts(build_model(paths, projector, layout))
        name = projector if layout is None else f"smop {layout.upper()}"
        print(
            f"| {name} | {c['projector']:,} | {c['active_per_token']:,} | {c['lora']:,} | {c['markers']:,} | "
            f"{c['trainable']:,} | {c['total']:,} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
