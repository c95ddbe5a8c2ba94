from abc import ABC, abstractmethod
from typing import Tuple

import torch


class AbsAudioEncoder(torch.nn.Module, ABC):
    """Raw 16 kHz waveform (B, S) + lengths -> frame features (B, T, D) + lengths."""

    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
