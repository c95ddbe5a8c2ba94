"""An ffmpeg that hangs, for tests of what smop does when decoding stalls (a pipe, a hung mount)."""

from pathlib import Path


def stalling_ffmpeg(folder: Path) -> Path:
    """An ``ffmpeg`` that writes its process id and then hangs, as ffmpeg does on an input that stalls."""
    folder.mkdir(exist_ok=True)
    script = folder / "ffmpeg"
    script.write_text(f"#!/bin/sh\necho $$ > {folder / 'pid'}\nexec sleep 60\n")
    script.chmod(0o755)
    return folder


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
