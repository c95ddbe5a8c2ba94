"""Package versions recorded beside every result."""

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Dict

PACKAGES = ("smop", "espnet", "torch", "torchaudio", "transformers", "peft", "numpy", "sentencepiece")


def versions() -> Dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    try:
        root = Path(__file__).resolve().parents[2]
        out["smop_git"] = (
            subprocess.run(
                ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        out["smop_git"] = "unknown"
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    try:
        gpus = (
            subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
            )
            .stdout.strip()
            .splitlines()
        )
        if gpus:
            text += f"; GPUs: {', '.join(gpus)}"
    except (OSError, subprocess.SubprocessError):
        pass
    return text
