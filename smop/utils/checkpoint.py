"""Safe reading of smop model checkpoints (no pickled code is ever run)."""

import pickle
from pathlib import Path
from typing import Dict, Union

import torch


class CheckpointError(RuntimeError, ValueError):
    """A weights file that cannot be read or does not fit the model; the message names the file
    (a ValueError too, as the commands catch bad input)."""


def one_line(error: Exception) -> str:
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())[:400]


def check_safetensors(path: Union[str, Path]) -> None:
    """CheckpointError unless ``path`` is a readable .safetensors file (its header only is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            f.keys()
    except Exception as e:  # SafetensorError (header too large, ...), OSError
        raise CheckpointError(f"{path}: damaged weights file ({type(e).__name__}: {one_line(e)})") from None


def load_model_state(path: Union[str, Path], map_location: str = "cpu") -> Dict[str, torch.Tensor]:
    """A model state dict from an ESPnet ``*.pth`` (``weights_only=True``) or ``.safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint; {describe_checkpoints(path.parent)}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        check_safetensors(path)
        try:
            return load_file(str(path), device=map_location)
        except Exception as e:  # a header that reads but data that does not
            raise CheckpointError(f"{path}: damaged weights file ({type(e).__name__}: {one_line(e)})") from None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # anything beyond tensors and containers; torch's advice is unsafe
        raise CheckpointError(
            f"{path}: refused to load: it holds pickled Python objects beyond tensors, which smop never "
            "unpickles (unpickling can run code); use a checkpoint written by smop's training, or .safetensors"
        ) from None
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path}: not a readable tensor checkpoint ({type(e).__name__}: {first})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # ESPnet's checkpoint.pth bundles optimiser and reporter states
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a model state dict")
    return state


def describe_checkpoints(directory: Path) -> str:
    """What a user could load instead: the checkpoints in ``directory``, or that it does not exist."""
    if not directory.is_dir():
        return f"the directory {directory} does not exist"
    found = sorted(p.name for p in directory.iterdir() if p.suffix in (".pth", ".safetensors"))
    return f"{directory} holds {', '.join(found)}" if found else f"{directory} holds no *.pth or *.safetensors"
