from typing import Tuple

import torch

from smop.compressors.abs_compressor import AbsCompressor
from smop.utils.masks import check_batch, make_valid_mask


class AvgPoolCompressor(AbsCompressor):
    """Average of every ``rate`` consecutive frames (Llama-SMoP's default compression).

    Only valid frames are averaged, so the last, partial window of an utterance gives the same
    value whether the utterance is decoded alone or padded inside a batch.
    T' = ceil(T / rate), D' = D.
    """

    def output_size(self) -> int:
        return self.input_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        check_batch("avg_pool", x, lengths)
        if self.rate == 1:
            return x, lengths
        b, t, d = x.shape
        valid = make_valid_mask(lengths, t).to(x.dtype).unsqueeze(-1)  # (B, T, 1)
        pad = (-t) % self.rate
        x = torch.nn.functional.pad(x * valid, (0, 0, 0, pad))
        valid = torch.nn.functional.pad(valid, (0, 0, 0, pad))
        t_out = (t + pad) // self.rate
        summed = x.view(b, t_out, self.rate, d).sum(2)
        count = valid.view(b, t_out, self.rate, 1).sum(2).clamp(min=1)
        out_lengths = torch.div(lengths + self.rate - 1, self.rate, rounding_mode="floor")
        return summed / count, out_lengths
