"""Package versions recorded beside every result."""
import importlib.metadata
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
        out["smop_git"] = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        out["smop_git"] = "unknown"
    return out
