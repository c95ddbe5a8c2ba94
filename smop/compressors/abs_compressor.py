from abc import ABC, abstractmethod
from typing import Dict, Tuple

import torch

from smop.utils.component import AbsComponent


class AbsCompressor(AbsComponent, ABC):
    """Shortens a frame sequence (B, T, D) by an integer rate; owns the new lengths.

    Args:
        input_size: the encoder's feature size (given by the task).
        rate: input frames per output frame; the task gives its default per modality when the
            config sets none (smop.tasks.avsr.DEFAULT_RATES).
    """

    def __init__(self, input_size: int, rate: int):
        super().__init__()
        if rate < 1:
            raise ValueError(f"compression rate must be >= 1, got {rate}")
        self.input_size = input_size
        self.rate = rate

    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def summary(self) -> Dict[str, object]:
        return {"type": type(self).__name__, "rate": self.rate}
