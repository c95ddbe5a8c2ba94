"""Dense baselines: one projector per modality (Llama-AVSR)."""

from typing import Dict

from torch import nn

from smop.projectors.abs_projector import AbsProjector, ModalityFeats, ProjectorOutput
from smop.utils.masks import make_valid_mask


class _PerModalityProjector(AbsProjector):
    def __init__(self, input_sizes: Dict[str, int], output_size: int):
        super().__init__()
        if not input_sizes:
            raise ValueError("a projector needs at least one input modality")
        self._output_size = output_size
        self.proj = nn.ModuleDict({m: self.build(d, output_size) for m, d in input_sizes.items()})

    def build(self, input_size: int, output_size: int) -> nn.Module:
        raise NotImplementedError

    def output_size(self) -> int:
        return self._output_size

    def forward(self, feats: ModalityFeats) -> ProjectorOutput:
        embeds = {}
        for m, (x, lengths) in feats.items():
            valid = make_valid_mask(lengths, x.shape[1]).unsqueeze(-1)
            embeds[m] = self.proj[m](x) * valid
        any_x = next(iter(feats.values()))[0]
        return ProjectorOutput(embeds, any_x.new_zeros(()))


class LinearProjector(_PerModalityProjector):
    """Linear(D_enc -> D_llm) per modality."""

    def build(self, input_size: int, output_size: int) -> nn.Module:
        return nn.Linear(input_size, output_size)


class MLPProjector(_PerModalityProjector):
    """Linear -> ReLU -> Linear per modality (Llama-AVSR's projector)."""

    def __init__(self, input_sizes: Dict[str, int], output_size: int, hidden_size: int = 2048):
        self.hidden_size = hidden_size
        super().__init__(input_sizes, output_size)

    def build(self, input_size: int, output_size: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(input_size, self.hidden_size), nn.ReLU(), nn.Linear(self.hidden_size, output_size)
        )
