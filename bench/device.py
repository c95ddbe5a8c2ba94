"""Where a benchmark case runs: the device, a clock that waits for it, and its peak memory.

On a GPU, kernels run asynchronously: a time read without ``torch.cuda.synchronize()`` measures
the launches, not the work. Peak memory is the CUDA allocator's high-water mark there (tensors
only), and the process's peak resident memory on a CPU (tensors, libraries and runtime).
"""

import contextlib
import time
from typing import Callable

import torch

from bench.memory import peak_rss_bytes, reset_peak_rss, rss_bytes

DEVICES = ("cpu", "cuda")


class Device:
    def __init__(self, name: str = "cpu"):
        if name not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {name!r}")
        if name == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is visible (torch.cuda.is_available() is False)")
        self.name = name

    @property
    def gpu(self) -> bool:
        return self.name == "cuda"

    def sync(self) -> None:
        if self.gpu:
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.gpu:
            torch.cuda.reset_peak_memory_stats()
        else:
            reset_peak_rss()

    def peak_bytes(self) -> int:
        return torch.cuda.max_memory_allocated() if self.gpu else peak_rss_bytes()

    def used_bytes(self) -> int:
        return torch.cuda.memory_allocated() if self.gpu else rss_bytes()

    def training_step(self, loss_of: Callable[[], torch.Tensor], optimizer, amp: bool) -> Callable[[], None]:
        """One optimizer step on ``loss_of()`` (bf16 autocast on a GPU when ``amp``)."""
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()

        def step():
            with autocast:
                loss = loss_of()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    def measure_steps(self, step: Callable[[], None], steps: int = 1) -> dict:
        """``step`` run once to warm up (optimizer state and allocator pools exist from then on),
        then ``steps`` times measured: the memory in use before them (resting), their peak, seconds."""
        step()
        self.sync()
        resting = self.used_bytes()
        self.reset_peak()
        t = time.perf_counter()
        for _ in range(steps):
            step()
        self.sync()
        return dict(resting=resting, peak=self.peak_bytes(), seconds=time.perf_counter() - t)

    def memory_kind(self) -> str:
        return "peak GPU memory allocated" if self.gpu else "peak resident memory"

    def frozen_dtype(self, cpu: str) -> str:
        """The frozen parts' dtype of a case: bf16 on a GPU, the case's own choice on a CPU."""
        return "bfloat16" if self.gpu else cpu

    def describe(self) -> str:
        if self.gpu:
            props = torch.cuda.get_device_properties(0)
            return f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB)"
        return f"CPU ({torch.get_num_threads()} threads)"

    def __str__(self) -> str:
        return self.name
