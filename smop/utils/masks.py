"""Length <-> padding-mask helpers shared by every component."""

import torch


def make_pad_mask(lengths: torch.Tensor, max_len: int = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool mask, True on padded frames."""
    if max_len is None:
        max_len = int(lengths.max()) if lengths.numel() > 0 else 0
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) >= lengths.unsqueeze(1)


def make_valid_mask(lengths: torch.Tensor, max_len: int = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool mask, True on valid frames."""
    return ~make_pad_mask(lengths, max_len)


def check_batch(name: str, x: torch.Tensor, lengths: torch.Tensor) -> None:
    """Assert that a padded batch and its lengths agree; the message carries the shapes."""
    if x.size(0) != lengths.size(0):
        raise ValueError(f"{name}: batch size {x.size(0)} != lengths batch size {lengths.size(0)}")
    if lengths.numel() > 0 and int(lengths.max()) > x.size(1):
        raise ValueError(f"{name}: max length {int(lengths.max())} exceeds padded size {x.size(1)}")
