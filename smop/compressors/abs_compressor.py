from abc import ABC, abstractmethod
from typing import Tuple

import torch


class AbsCompressor(torch.nn.Module, ABC):
    """Shortens a frame sequence (B, T, D) by an integer rate; owns the new lengths."""

    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
