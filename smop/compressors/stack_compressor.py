from typing import Optional, Tuple

import torch

from smop.compressors.abs_compressor import AbsCompressor
from smop.utils.masks import check_batch, make_valid_mask


class StackCompressor(AbsCompressor):
    """Concatenates every ``rate`` consecutive frames along the feature axis (Llama-AVSR).

    The partial last window is zero-filled (not dropped), so no speech is lost.
    T' = ceil(T / rate), D' = D * rate.
    """

    def output_size(self, rate: Optional[int] = None) -> int:
        return self.input_size * self.chosen_rate(rate)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, rate: Optional[int] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        rate = self.chosen_rate(rate)
        check_batch("stack", x, lengths)
        b, t, d = x.shape
        x = x * make_valid_mask(lengths, t).to(x.dtype).unsqueeze(-1)
        pad = (-t) % rate
        x = torch.nn.functional.pad(x, (0, 0, 0, pad))
        out = x.reshape(b, (t + pad) // rate, rate * d)
        out_lengths = torch.div(lengths + rate - 1, rate, rounding_mode="floor")
        return out, out_lengths
