from abc import ABC, abstractmethod
from typing import Dict, Optional, Sequence, Tuple

import torch

from smop.utils.component import AbsComponent


class AbsCompressor(AbsComponent, ABC):
    """Shortens a frame sequence (B, T, D) by an integer rate; owns the new lengths.

    Args:
        input_size: the encoder's feature size (given by the task).
        rate: input frames per output frame; the task gives its default per modality when the
            config sets none (smop.models.elastic.DEFAULT_RATES).
        rates: instead of ``rate``, the rates of an elastic model (e.g. [4, 16]): each forward call
            names the one it compresses at (``rate=``), the first by default.
    """

    def __init__(self, input_size: int, rate: Optional[int] = None, rates: Optional[Sequence[int]] = None):
        super().__init__()
        if (rate is None) == (rates is None):
            raise TypeError(
                f"a compressor takes one of rate (one rate) or rates (several), got rate={rate} rates={rates}"
            )
        chosen = [rate] if rates is None else list(rates)
        if not chosen or len(set(chosen)) != len(chosen) or any(not isinstance(r, int) or r < 1 for r in chosen):
            raise ValueError(
                f"compression rates must be distinct integers >= 1, got {rate if rates is None else rates}"
            )
        self.input_size = input_size
        self.rates: Tuple[int, ...] = tuple(chosen)
        self.rate = self.rates[0]  # the default of a forward call

    @classmethod
    def check_conf(cls, key: str, rate: Optional[int] = None, rates: Optional[Sequence[int]] = None, **_) -> None:
        if rate is not None and rates is not None:
            raise ValueError(f"{key}: set rate (one rate) or rates (an elastic model's), not both")
        if rates is not None and (
            not isinstance(rates, (list, tuple))
            or not rates
            or len(set(rates)) != len(rates)
            or any(not isinstance(r, int) or isinstance(r, bool) or r < 1 for r in rates)
        ):
            raise ValueError(f"{key}.rates: a list of distinct integers >= 1, got {rates!r}")

    def chosen_rate(self, rate: Optional[int]) -> int:
        """``rate`` (None: the default), checked against the rates the compressor was built with."""
        if rate is None:
            return self.rate
        if rate not in self.rates:
            raise ValueError(f"compression rate {rate} is not one of this compressor's rates {list(self.rates)}")
        return rate

    @abstractmethod
    def output_size(self, rate: Optional[int] = None) -> int:
        """The feature size of the output at ``rate`` (None: the default rate)."""
        raise NotImplementedError

    @abstractmethod
    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, rate: Optional[int] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def summary(self) -> Dict[str, object]:
        if len(self.rates) == 1:
            return {"type": type(self).__name__, "rate": self.rate}
        return {"type": type(self).__name__, "rates": list(self.rates)}
