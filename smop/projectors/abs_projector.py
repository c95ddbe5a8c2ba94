from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Dict, Tuple

import torch

from smop.utils.component import AbsComponent

# modality name -> ((B, T, D) features, (B,) lengths)
ModalityFeats = Dict[str, Tuple[torch.Tensor, torch.Tensor]]


@dataclass
class ProjectorOutput:
    embeds: Dict[str, torch.Tensor]  # modality -> (B, T, D_llm), zeros on padded frames
    aux_loss: torch.Tensor  # weighted auxiliary loss to add to the CE (0 for dense projectors)
    stats: Dict[str, torch.Tensor] = field(default_factory=dict)  # scalars for the training log
    # Sparse projectors: modality -> (top_k, num_experts) counts of valid tokens whose r-th choice is e.
    usage: Dict[str, torch.Tensor] = field(default_factory=dict)


class AbsProjector(AbsComponent, ABC):
    """Maps encoder frames of each modality into the LLM's embedding space."""

    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(self, feats: ModalityFeats) -> ProjectorOutput:
        raise NotImplementedError

    def may_leave_parameters_unused(self) -> bool:
        """Whether a step can leave parameters without a gradient (an expert that gets no token);
        DistributedDataParallel must then look for them (ESPnet's ``--unused_parameters true``)."""
        return False
