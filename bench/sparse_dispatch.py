"""Case 3: sparse expert dispatch against running every expert on every token and masking.

One expert pool at the real sizes (1024 -> 2048 -> 2048, Llama-3.2-1B width) with k = 2 and
E = 4, 8, 16 experts, over the tokens of a training batch (8 utterances of 10 s at 12.5
tokens/s = 1,000 tokens), fp32, forward and backward (what a training step pays), on the CPU or a GPU.

    python -m bench.sparse_dispatch
"""

from typing import List

import torch

from bench.common import Row, interleaved_times, parser, report
from bench.device import Device
from smop.projectors.expert_pool import ExpertPool
from smop.projectors.router import TopKRouter


def run(
    tokens: int = 1000, experts=(4, 8, 16), top_k: int = 2, repeats: int = 5, device: Device = Device()
) -> List[Row]:
    rows = []
    for e in experts:
        torch.manual_seed(e)
        pool, router = ExpertPool(e, 1024, 2048, 2048).to(device.name), TopKRouter(1024, e, top_k).to(device.name)
        x = torch.randn(tokens, 1024).to(device.name)
        routing = router(x)
        experts_, weights = routing.experts.detach(), routing.weights.detach()
        with torch.no_grad():
            diff = (pool(x, experts_, weights) - pool.forward_dense(x, experts_, weights)).abs().max().item()

        def step(fn):
            def once():
                pool.zero_grad(set_to_none=True)
                fn(x, experts_, weights).square().mean().backward()

            return once

        t = interleaved_times(
            {"sparse": step(pool.forward), "dense": step(pool.forward_dense)}, repeats=repeats, sync=device.sync
        )
        ratio = t["dense"] / t["sparse"]
        rows.append(
            Row(
                f"3 sparse dispatch speed-up, E={e}, k={top_k} ({tokens} tokens, fwd+bwd, fp32)",
                f"{1000 * t['sparse']:.1f} ms",
                f"{1000 * t['dense']:.1f} ms (dense)",
                ratio,
                "≥ 1.6× at E=8" if e == 8 else "",
                ratio >= 1.6 if e == 8 else None,
            )
        )
        rows.append(
            Row(f"3 sparse vs dense max abs output difference, E={e}", f"{diff:.2e}", "", None, "≤ 1e-5", diff <= 1e-5)
        )
    return rows


def main(cmd=None):
    p = parser(__doc__, root=False)
    p.add_argument("--tokens", type=int, default=1000)
    args = p.parse_args(cmd)
    print(report(run(args.tokens, device=Device(args.device))))


if __name__ == "__main__":
    main()
