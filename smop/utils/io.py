"""Atomic file writing (outputs appear complete or not at all) and file digests."""
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union


# The process's umask (read once): mkstemp makes 0600 files, a plain open() 0666 & ~umask.
_UMASK = os.umask(0)
os.umask(_UMASK)


def temporary_beside(path: Path):
    """(fd, name) of a new temporary file next to ``path``, with the permissions open() would give it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)
    return fd, tmp


@contextlib.contextmanager
def atomic_write(path: Union[str, Path], mode: str = "w", encoding: str = "utf-8") -> Iterator:
    """Write to a temporary file in the same directory, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_beside(path)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sha256_of(path: Union[str, Path]) -> str:
    """The SHA-256 of a file's bytes, read in blocks (packs hold files of gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
