"""Safe reading of smop model checkpoints (no pickled code is ever run)."""

import pickle
from pathlib import Path
from typing import Dict, Union

import torch


def load_model_state(path: Union[str, Path], map_location: str = "cpu") -> Dict[str, torch.Tensor]:
    """A model state dict from an ESPnet ``*.pth`` (``weights_only=True``) or ``.safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint; {describe_checkpoints(path.parent)}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device=map_location)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # anything beyond tensors and containers; torch's advice is unsafe
        raise RuntimeError(
            f"{path}: refused to load: it holds pickled Python objects beyond tensors, which smop never "
            "unpickles (unpickling can run code); use a checkpoint written by smop's training, or .safetensors"
        ) from None
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise RuntimeError(f"{path}: not a readable tensor checkpoint ({type(e).__name__}: {first})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # ESPnet's checkpoint.pth bundles optimiser and reporter states
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RuntimeError(f"{path}: not a model state dict")
    return state


def describe_checkpoints(directory: Path) -> str:
    """What a user could load instead: the checkpoints in ``directory``, or that it does not exist."""
    if not directory.is_dir():
        return f"the directory {directory} does not exist"
    found = sorted(p.name for p in directory.iterdir() if p.suffix in (".pth", ".safetensors"))
    return f"{directory} holds {', '.join(found)}" if found else f"{directory} holds no *.pth or *.safetensors"
