from abc import ABC, abstractmethod
from typing import Tuple

import torch

from smop.utils.component import AbsComponent


class AbsVideoEncoder(AbsComponent, ABC):
    """Normalised grayscale mouth crops (B, T, H, W) + lengths -> features (B, T', D) + lengths."""

    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(self, video: torch.Tensor, video_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
