from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from smop.utils.component import AbsComponent

# modality name -> ((B, T, D_llm) embeddings, (B,) lengths)
ModalityEmbeds = Dict[str, Tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class TextEncoder:
    """How a decoder turns a transcript into its token ids (what data preparation and the
    preprocessor need, without building the decoder)."""

    encode: Callable[[str], List[int]]
    unk_id: Optional[int] = None


class AbsDecoder(AbsComponent, ABC):
    """A language model that reads modality embeddings and writes the transcript.

    The decoder class owns its tokenizer and prompts: ``text_encoder(**decoder_conf)`` and
    ``prompts(**decoder_conf)`` answer for a config without loading the model."""

    @classmethod
    @abstractmethod
    def text_encoder(cls, **conf) -> TextEncoder:
        raise NotImplementedError

    @classmethod
    @abstractmethod
    def prompts(cls, **conf) -> Dict[str, str]:
        """The instruction per input modality set (audio, video, audiovisual) that ``conf`` gives."""
        raise NotImplementedError

    @abstractmethod
    def embed_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(
        self,
        embeds: ModalityEmbeds,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        row_modalities: Optional[Sequence[str]] = None,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Teacher-forced loss on (B, L) transcript ids; returns (loss, stats). ``row_modalities``:
        per utterance, the modality key it is read as (audio, video, audiovisual; an elastic
        model's sampled task), its other modality's tokens left out; None: every one in ``embeds``."""
        raise NotImplementedError

    @abstractmethod
    def generation_settings(self, beam_size: int, early_stopping: bool) -> Dict[str, Any]:
        """Every search setting ``generate`` runs with, as data (decoding records them)."""
        raise NotImplementedError

    @abstractmethod
    def generate(
        self,
        embeds: ModalityEmbeds,
        max_new_tokens: List[int],
        beam_size: int = 1,
        extra_processors: Sequence[Any] = (),
        early_stopping: bool = False,
    ) -> List[Tuple[str, float]]:
        """Transcripts and their log-probabilities, one per utterance; each utterance stops within
        its own ``max_new_tokens``. ``extra_processors`` run after the search's own logits
        processors (e.g. a timer in the benchmarks); ``early_stopping`` as in transformers' beam
        search."""
        raise NotImplementedError
