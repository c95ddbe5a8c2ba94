from abc import ABC, abstractmethod
from typing import Dict, List, Tuple

import torch

# modality name -> ((B, T, D_llm) embeddings, (B,) lengths)
ModalityEmbeds = Dict[str, Tuple[torch.Tensor, torch.Tensor]]


class AbsDecoder(torch.nn.Module, ABC):
    """A language model that reads modality embeddings and writes the transcript."""

    @abstractmethod
    def embed_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def tokenize(self, text: str) -> List[int]:
        raise NotImplementedError

    @abstractmethod
    def forward(
        self, embeds: ModalityEmbeds, text: torch.Tensor, text_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Teacher-forced loss on (B, L) transcript ids; returns (loss, stats)."""
        raise NotImplementedError

    @abstractmethod
    def generate(
        self, embeds: ModalityEmbeds, max_new_tokens: List[int], beam_size: int = 1
    ) -> List[Tuple[str, float]]:
        """Transcripts and their log-probabilities, one per utterance."""
        raise NotImplementedError
