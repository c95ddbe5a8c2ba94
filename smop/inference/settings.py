"""Decoding settings: one record for avsr_inference, the Python API and packed models."""

import dataclasses
from typing import Any, Dict, Mapping, Optional

from smop.utils.frozen import DTYPES

CELL = ("modality", "audio_rate", "video_rate")  # an elastic model's grid cell (settings without a default value)


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
    """Every setting decoding depends on (smop's decoding config; nothing comes from the LLM's
    generation_config.json).

    Args:
        batch_size: utterances per batch (batched and one-by-one decoding give the same hypotheses).
        beam_size: 1 = greedy search.
        max_new_tokens_per_second, max_new_tokens_min: each utterance's token budget,
            ``max_new_tokens_min + ceil(max_new_tokens_per_second * seconds)``.
        early_stopping: beam search stops once ``beam_size`` hypotheses have ended (transformers'
            ``early_stopping``; False, its default, is what the authors decoded with).
        dtype: dtype of the model and its inputs while decoding.
        modality, audio_rate, video_rate: the cell of an elastic model's grid to decode (the
            modality read, each input's compression rate); None: the model's default. The model
            refuses one it was not trained for (SmopAVSRModel.decoding_choice).
    """

    batch_size: int = 1
    beam_size: int = 1
    max_new_tokens_per_second: float = 10.0
    max_new_tokens_min: int = 10
    early_stopping: bool = False
    dtype: str = "float32"
    modality: Optional[str] = None
    audio_rate: Optional[int] = None
    video_rate: Optional[int] = None

    def __post_init__(self):
        if self.batch_size < 1 or self.beam_size < 1:
            raise ValueError(f"batch_size and beam_size must be >= 1, got {self.batch_size} and {self.beam_size}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "decoding settings") -> "DecodeSettings":
        """Settings from a mapping that may hold other keys too (e.g. avsr_inference's options)."""
        names = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in values.items() if k in names and v is not None}
        try:
            return cls(**{k: _coerce(getattr(cls, k), v, k) for k, v in given.items()})
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: {e}") from e

    def replace(self, **changes) -> "DecodeSettings":
        """A copy with the given settings changed (None keeps the current value)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown decoding settings {sorted(unknown)}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def search(self) -> Dict[str, Any]:
        """The keyword arguments of ``SmopAVSRModel.recognize``."""
        return dict(
            beam_size=self.beam_size,
            max_new_tokens_per_second=self.max_new_tokens_per_second,
            max_new_tokens_min=self.max_new_tokens_min,
            early_stopping=self.early_stopping,
            **self.cell(),
        )

    def cell(self) -> Dict[str, Any]:
        """The grid cell set (modality, audio_rate, video_rate), those left unset omitted."""
        return {k: getattr(self, k) for k in CELL if getattr(self, k) is not None}

    def to_dict(self) -> Dict[str, Any]:
        """Every setting; the grid cell only where set (a fixed model's records stay as they were)."""
        values = dataclasses.asdict(self)
        return {k: v for k, v in values.items() if k not in CELL or v is not None}


def _coerce(default: Any, value: Any, name: str) -> Any:
    """``value`` as the type of the setting's default; booleans from bools or 'true'/'false' only."""
    if name in CELL:
        return str(value) if name == "modality" else int(value)
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    return type(default)(value)


def decoding_batch(batch: Mapping[str, Any], device: str, dtype) -> Dict[str, Any]:
    """A collated batch on ``device`` with its floats in the decoding ``dtype`` (cast in torch:
    numpy, where ESPnet's dataset would cast, has no bfloat16)."""
    from espnet2.torch_utils.device_funcs import to_device

    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in to_device(dict(batch), device).items()}
