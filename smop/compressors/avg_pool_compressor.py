from typing import Optional, Tuple

import torch

from smop.compressors.abs_compressor import AbsCompressor
from smop.utils.masks import check_batch, make_valid_mask


class AvgPoolCompressor(AbsCompressor):
    """Average of every ``rate`` consecutive frames (Llama-SMoP's default compression).

    Only valid frames are averaged, so the last, partial window of an utterance gives the same
    value whether the utterance is decoded alone or padded inside a batch.
    T' = ceil(T / rate), D' = D.
    """

    def output_size(self, rate: Optional[int] = None) -> int:
        return self.input_size

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, rate: Optional[int] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        rate = self.chosen_rate(rate)
        check_batch("avg_pool", x, lengths)
        if rate == 1:
            return x, lengths
        b, t, d = x.shape
        valid = make_valid_mask(lengths, t).to(x.dtype).unsqueeze(-1)  # (B, T, 1)
        pad = (-t) % rate
        x = torch.nn.functional.pad(x * valid, (0, 0, 0, pad))
        valid = torch.nn.functional.pad(valid, (0, 0, 0, pad))
        t_out = (t + pad) // rate
        summed = x.view(b, t_out, rate, d).sum(2)
        count = valid.view(b, t_out, rate, 1).sum(2).clamp(min=1)
        out_lengths = torch.div(lengths + rate - 1, rate, rounding_mode="floor")
        return summed / count, out_lengths
