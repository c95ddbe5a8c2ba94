from typing import Tuple

import torch

from smop.compressors.abs_compressor import AbsCompressor
from smop.utils.masks import check_batch, make_valid_mask


class StackCompressor(AbsCompressor):
    """Concatenates every ``rate`` consecutive frames along the feature axis (Llama-AVSR).

    The partial last window is zero-filled (not dropped), so no speech is lost.
    T' = ceil(T / rate), D' = D * rate.
    """

    def output_size(self) -> int:
        return self.input_size * self.rate

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        check_batch("stack", x, lengths)
        b, t, d = x.shape
        x = x * make_valid_mask(lengths, t).to(x.dtype).unsqueeze(-1)
        pad = (-t) % self.rate
        x = torch.nn.functional.pad(x, (0, 0, 0, pad))
        out = x.reshape(b, (t + pad) // self.rate, self.rate * d)
        out_lengths = torch.div(lengths + self.rate - 1, self.rate, rounding_mode="floor")
        return out, out_lengths
