"""Sparse Mixture of Projectors (Llama-SMoP) with the JEJR, DEDR and JEDR layouts."""

from typing import Dict, List

import torch
from torch import nn

from smop.projectors.abs_projector import AbsProjector, ModalityFeats, ProjectorOutput
from smop.projectors.expert_pool import ExpertPool
from smop.projectors.router import Routing, TopKRouter, choice_counts, load_balancing_loss, z_loss
from smop.utils.masks import make_valid_mask

LAYOUTS = ("jejr", "dedr", "jedr")


class SmopProjector(AbsProjector):
    """Sparsely-gated mixture of projector experts.

    Layouts (Cappellazzo et al., 2025, Fig. 2):
      jejr: one router and one expert pool over the audio and video tokens together.
      dedr: a router and a pool of ``num_experts`` experts per modality.
      jedr: one shared pool, a router per modality.
    With one modality (ASR or VSR) the three layouts build the same module.

    Only valid (unpadded) tokens are routed and enter the auxiliary losses:
      aux = lb_loss_weight * L_lb + z_loss_weight * L_z, each averaged over the routers
      (jejr has one router over the union of both modalities' tokens).

    Args:
        input_sizes: modality -> encoder feature size after compression (given by the task).
        output_size: the LLM's embedding size (given by the task).
    """

    def __init__(
        self,
        input_sizes: Dict[str, int],
        output_size: int,
        layout: str = "dedr",
        num_experts: int = 4,
        top_k: int = 2,
        expert_hidden: int = 2048,
        lb_loss_weight: float = 0.01,
        z_loss_weight: float = 0.001,
    ):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"projector_conf.layout must be one of {LAYOUTS}, got {layout!r}")
        if not input_sizes:
            raise ValueError("a projector needs at least one input modality")
        self.layout = layout
        self.modalities: List[str] = list(input_sizes)
        self.num_experts = num_experts
        self.top_k = top_k
        self.lb_loss_weight = lb_loss_weight
        self.z_loss_weight = z_loss_weight
        self._output_size = output_size
        shared_pool = layout in ("jejr", "jedr")
        if shared_pool and len(set(input_sizes.values())) > 1:
            raise ValueError(
                f"layout {layout} shares experts across modalities, which needs equal input sizes; "
                f"got {input_sizes} (use layout dedr, or avg_pool compression with equal encoder widths)"
            )

        def pool(d):
            return ExpertPool(num_experts, d, expert_hidden, output_size)

        if layout == "jejr":
            d = next(iter(input_sizes.values()))
            self.routers = nn.ModuleDict({"joint": TopKRouter(d, num_experts, top_k)})
            self.pools = nn.ModuleDict({"joint": pool(d)})
        elif layout == "dedr":
            self.routers = nn.ModuleDict({m: TopKRouter(d, num_experts, top_k) for m, d in input_sizes.items()})
            self.pools = nn.ModuleDict({m: pool(d) for m, d in input_sizes.items()})
        else:  # jedr
            d = next(iter(input_sizes.values()))
            self.routers = nn.ModuleDict({m: TopKRouter(d, num_experts, top_k) for m, d in input_sizes.items()})
            self.pools = nn.ModuleDict({"joint": pool(d)})

    def output_size(self) -> int:
        return self._output_size

    def may_leave_parameters_unused(self) -> bool:
        return self.top_k < self.num_experts

    def router_for(self, modality: str) -> str:
        return "joint" if self.layout == "jejr" else modality

    def pool_for(self, modality: str) -> str:
        return modality if self.layout == "dedr" else "joint"

    def forward(self, feats: ModalityFeats) -> ProjectorOutput:
        unknown = set(feats) - set(self.modalities)
        if unknown:
            raise ValueError(f"projector built for {self.modalities}, got features for {sorted(unknown)}")
        # 1. Gather the valid tokens of each modality: (N_m, D).
        valid = {m: make_valid_mask(lengths, x.shape[1]) for m, (x, lengths) in feats.items()}
        tokens = {m: feats[m][0][valid[m]] for m in feats}

        # 2. Route: one call per router, over all the tokens that router sees.
        routing: Dict[str, Routing] = {}
        router_losses = []
        for r, members in self._group(feats, self.router_for).items():
            out = self.routers[r](torch.cat([tokens[m] for m in members]))
            router_losses.append((load_balancing_loss(out), z_loss(out)))
            routing.update(self._split(out, members, tokens))

        # 3. Dispatch: one call per pool, over all the tokens that pool serves.
        projected: Dict[str, torch.Tensor] = {}
        for p, members in self._group(feats, self.pool_for).items():
            y = self.pools[p](
                torch.cat([tokens[m] for m in members]),
                torch.cat([routing[m].experts for m in members]),
                torch.cat([routing[m].weights for m in members]),
            )
            projected.update(zip(members, y.split([tokens[m].shape[0] for m in members])))

        # 4. Scatter back to (B, T, D_llm), zeros on padding.
        embeds = {}
        for m, (x, _) in feats.items():
            out = x.new_zeros(*x.shape[:2], self._output_size, dtype=projected[m].dtype)
            out[valid[m]] = projected[m]
            embeds[m] = out

        lb = torch.stack([lb for lb, _ in router_losses]).mean()
        z = torch.stack([z for _, z in router_losses]).mean()
        stats = {"lb_loss": lb.detach(), "z_loss": z.detach()}
        usage = {}
        for m in feats:
            usage[m] = choice_counts(routing[m].experts, self.num_experts).detach()
            stats[f"{m}_tokens"] = feats[m][1].sum().detach().float()
            frac = usage[m] / max(float(usage[m][0].sum()), 1.0)
            for rank in range(self.top_k):  # the training log's view of the routing (scalars only)
                for e in range(self.num_experts):
                    stats[f"{m}_top{rank + 1}_e{e}"] = frac[rank, e]
        return ProjectorOutput(embeds, self.lb_loss_weight * lb + self.z_loss_weight * z, stats, usage)

    def summary(self) -> Dict[str, object]:
        return {
            "type": type(self).__name__,
            "layout": self.layout,
            "num_experts": self.num_experts,
            "top_k": self.top_k,
            "routers": len(self.routers),
            "expert_pools": len(self.pools),
        }

    @staticmethod
    def _group(feats: ModalityFeats, key) -> Dict[str, List[str]]:
        groups: Dict[str, List[str]] = {}
        for m in feats:
            groups.setdefault(key(m), []).append(m)
        return groups

    @staticmethod
    def _split(out: Routing, members: List[str], tokens) -> Dict[str, Routing]:
        sizes = [tokens[m].shape[0] for m in members]
        parts = zip(*(t.split(sizes) for t in (out.logits, out.probs, out.experts, out.weights)))
        return {m: Routing(*p) for m, p in zip(members, parts)}
