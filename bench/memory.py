"""This process's resident memory on Linux (from /proc), the CPU half of bench.device.Device's
memory figures. Torch-free: a case's subprocess imports it to measure a reader alone."""

from pathlib import Path


def reset_peak_rss() -> None:
    """Restart the kernel's high-water mark of this process's resident memory (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_rss_bytes() -> int:
    return _status_bytes("VmHWM")


def rss_bytes() -> int:
    return _status_bytes("VmRSS")
