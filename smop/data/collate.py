"""Batch collation: pad every input to the longest in the batch and add ``<name>_lengths``.

Same contract as ESPnet's ``CommonCollateFn`` (floats padded with 0.0, ids with -1), which we do
not import: its module pulls in ESPnet's g2p front ends, which try to download NLTK data.
"""

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch


class PadCollate:
    def __init__(self, float_pad_value: float = 0.0, int_pad_value: int = -1):
        self.float_pad_value = float_pad_value
        self.int_pad_value = int_pad_value

    def __call__(self, data: Sequence[Tuple[str, Dict[str, np.ndarray]]]) -> Tuple[List[str], Dict[str, torch.Tensor]]:
        uttids = [u for u, _ in data]
        names = list(data[0][1])
        batch: Dict[str, torch.Tensor] = {}
        for name in names:
            arrays = [torch.from_numpy(np.ascontiguousarray(d[name])) for _, d in data]
            trailing = {tuple(a.shape[1:]) for a in arrays}
            if len(trailing) != 1:
                raise ValueError(
                    f"'{name}' shapes differ beyond the time axis within a batch: "
                    + ", ".join(f"{u} {tuple(a.shape)}" for u, a in zip(uttids, arrays))
                )
            pad = self.float_pad_value if arrays[0].is_floating_point() else self.int_pad_value
            batch[name] = torch.nn.utils.rnn.pad_sequence(arrays, batch_first=True, padding_value=pad)
            batch[f"{name}_lengths"] = torch.tensor([a.shape[0] for a in arrays], dtype=torch.long)
        return uttids, batch
