"""A pool of projector experts with sparse dispatch."""

import torch
from torch import nn


class ProjectorExpert(nn.Sequential):
    """Linear -> ReLU -> Linear -> LayerNorm (Llama-SMoP's expert)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__(
            nn.Linear(input_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, output_size),
            nn.LayerNorm(output_size),
        )


class ExpertPool(nn.Module):
    def __init__(self, num_experts: int, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.output_size = output_size
        self.experts = nn.ModuleList(
            [ProjectorExpert(input_size, hidden_size, output_size) for _ in range(num_experts)]
        )

    def forward(self, x: torch.Tensor, experts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(N, D) tokens, (N, k) expert ids, (N, k) weights -> (N, D_out) weighted sum.

        Each expert runs only on the tokens routed to it: the (token, choice) pairs are sorted by
        expert once, and each expert reads its contiguous slice.
        """
        n, k = experts.shape
        out = x.new_zeros(n, self.output_size)
        if n == 0:
            return out
        flat_expert = experts.reshape(-1)
        order = torch.argsort(flat_expert, stable=True)
        token = torch.div(order, k, rounding_mode="floor")
        weight = weights.reshape(-1)[order]
        counts = torch.bincount(flat_expert, minlength=len(self.experts)).tolist()
        start = 0
        for e, count in enumerate(counts):
            if count == 0:
                continue
            idx = token[start : start + count]
            y = self.experts[e](x.index_select(0, idx))
            out.index_add_(0, idx, (y * weight[start : start + count, None]).to(out.dtype))
            start += count
        return out

    def forward_dense(self, x: torch.Tensor, experts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Reference: every expert on every token, then mask. Same result, E/k times the cost."""
        gate = torch.zeros(x.shape[0], len(self.experts), dtype=weights.dtype, device=x.device)
        gate.scatter_(1, experts, weights)
        ys = torch.stack([expert(x) for expert in self.experts], dim=1)  # (N, E, D_out)
        return (ys * gate.unsqueeze(-1).to(ys.dtype)).sum(1)
