"""Top-k router with Switch-style load balancing and router z-loss."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Routing:
    logits: torch.Tensor  # (N, E) float32
    probs: torch.Tensor  # (N, E) softmax in float32
    experts: torch.Tensor  # (N, k) chosen experts, best first
    weights: torch.Tensor  # (N, k) their probabilities renormalised to sum to 1


class TopKRouter(nn.Module):
    """Bias-free Linear(D -> E), softmax in float32, top-k, weights renormalised over the k."""

    def __init__(self, input_size: int, num_experts: int, top_k: int):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in 1..num_experts={num_experts}, got {top_k}")
        self.num_experts = num_experts
        self.top_k = top_k
        self.gate = nn.Linear(input_size, num_experts, bias=False)

    def forward(self, x: torch.Tensor) -> Routing:
        """(N, D) valid tokens only (padding must not reach the router)."""
        logits = self.gate(x).float()
        probs = logits.softmax(dim=-1)
        top_p, top_e = probs.topk(self.top_k, dim=-1)
        weights = top_p / top_p.sum(dim=-1, keepdim=True)
        return Routing(logits, probs, top_e, weights)


def choice_counts(experts: torch.Tensor, num_experts: int) -> torch.Tensor:
    """(N, k) choices -> (k, E): number of tokens whose r-th choice is expert e."""
    return torch.nn.functional.one_hot(experts, num_experts).float().sum(0)  # (N, k, E) summed over tokens


def choice_fractions(experts: torch.Tensor, num_experts: int) -> torch.Tensor:
    """(N, k) choices -> (k, E): share of tokens whose r-th choice is expert e."""
    return choice_counts(experts, num_experts) / max(experts.shape[0], 1)


def load_balancing_loss(routing: Routing) -> torch.Tensor:
    """L_lb = E * sum_r sum_e f[r, e] * P[e], P = mean router probability over the tokens."""
    e = routing.probs.shape[-1]
    if routing.probs.shape[0] == 0:
        return routing.probs.new_zeros(())
    f = choice_fractions(routing.experts, e)
    p = routing.probs.mean(0)
    return e * (f * p.unsqueeze(0)).sum()


def z_loss(routing: Routing) -> torch.Tensor:
    """L_z = mean over tokens of logsumexp(logits)^2."""
    if routing.logits.shape[0] == 0:
        return routing.logits.new_zeros(())
    return torch.logsumexp(routing.logits, dim=-1).pow(2).mean()
