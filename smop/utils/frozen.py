"""Freezing pretrained parts and keeping them in a low-precision dtype.

ESPnet's ``main_worker`` casts the whole model with ``model.to(dtype=train_dtype)`` (float32 at most
precision choices), which would double the memory of a bf16 LLM. Components that own frozen
weights mix in :class:`FrozenDtypeMixin`: its ``_apply`` lets every conversion through, then casts
frozen floating-point parameters back to ``frozen_dtype``. Trainable parameters (LoRA, projectors)
and buffers keep what the conversion gave them, so optimiser state stays in float32.
"""

from typing import Optional, Union

import torch

# The one table of dtype names smop takes (frozen weights, decoding).
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_dtype(name: Optional[Union[str, torch.dtype]], key: str = "frozen_dtype") -> Optional[torch.dtype]:
    """The torch dtype of ``name`` (one of DTYPES); ``key`` names the setting in the error."""
    if name is None or isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise ValueError(f"{key} must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


def freeze_module(module: torch.nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()


class FrozenDtypeMixin:
    """Keeps frozen parameters in ``self.frozen_dtype`` across ``.to()``/``.float()`` calls."""

    frozen_dtype: Optional[torch.dtype] = None

    def _apply(self, fn, recurse=True):
        dtype = self.frozen_dtype
        if dtype is None:
            return super()._apply(fn, recurse)

        def keep_frozen(t):
            out = fn(t)
            if (
                isinstance(t, torch.nn.Parameter)
                and not t.requires_grad
                and out.is_floating_point()
                and out.dtype != dtype
            ):
                out = out.to(dtype)
            return out

        return super()._apply(keep_frozen, recurse)


class FreezableMixin(FrozenDtypeMixin):
    """A pretrained component that is frozen by default: ``train()`` keeps it in eval mode.

    Frozen encoders must not switch dropout, layer drop or batch-norm statistics on when the
    trainer calls ``model.train()`` at the start of every epoch.
    """

    freeze: bool = True

    def train(self, mode: bool = True):
        return super().train(mode and not self.freeze)


def enable_activation_checkpointing(model) -> None:
    """Recompute a Hugging Face model's layer activations in the backward pass (non-reentrant
    torch.utils.checkpoint per layer). transformers before 5.21 (Python 3.10's newest is 5.20)
    names the switch gradient_checkpointing_enable."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable()
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
