from abc import ABC, abstractmethod
from typing import Optional, Tuple

import torch

from smop.utils.component import AbsComponent


class AbsAudioEncoder(AbsComponent, ABC):
    """Raw 16 kHz waveform (B, S) + lengths -> frame features (B, T, D) + lengths."""

    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    def max_input_samples(self) -> Optional[int]:
        """The longest waveform (16 kHz samples) the encoder takes; None: no limit."""
        return None

    def min_input_samples(self) -> int:
        """The shortest waveform (16 kHz samples) the encoder takes."""
        return 1

    @abstractmethod
    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
