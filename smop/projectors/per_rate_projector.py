"""One projector per rate pair: the baseline an elastic model's shared projector is compared with."""

from typing import Callable, Dict, Sequence

from torch import nn

from smop.projectors.abs_projector import AbsProjector, ModalityFeats, ProjectorOutput


class PerRateProjector(AbsProjector):
    """Holds a projector for each rate pair (by its name, ``a4_v2``); the model picks one with
    :meth:`select` (``model_conf.projector_per_rate: true``). Built by the task, not from a config.

    Args:
        names: the rate pairs' names.
        build: name -> a projector for that pair (its input sizes may differ, e.g. stack compression).
    """

    def __init__(self, names: Sequence[str], build: Callable[[str], AbsProjector]):
        super().__init__()
        self.by_rate = nn.ModuleDict({name: build(name) for name in names})

    def select(self, name: str) -> AbsProjector:
        return self.by_rate[name]

    def output_size(self) -> int:
        return next(iter(self.by_rate.values())).output_size()

    def forward(self, feats: ModalityFeats) -> ProjectorOutput:
        raise RuntimeError("a per-rate projector projects through select(<rate pair>)")

    def may_leave_parameters_unused(self) -> bool:
        return len(self.by_rate) > 1 or next(iter(self.by_rate.values())).may_leave_parameters_unused()

    def summary(self) -> Dict[str, object]:
        first = next(iter(self.by_rate.values())).summary()
        return {"type": type(self).__name__, "per_rate": list(self.by_rate), "projector": first}
