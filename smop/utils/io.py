"""Atomic file writing (outputs appear complete or not at all) and file digests."""

import contextlib
import hashlib
import os
import secrets
from pathlib import Path
from typing import Iterator, Tuple, Union


def temporary_beside(path: Path) -> Tuple[int, str]:
    """(fd, name) of a new temporary file next to ``path``, with the permissions open() would give
    it: created with mode 0666, from which the kernel takes the process's umask (mkstemp's 0600
    would make outputs private to their writer)."""
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), tmp
        except FileExistsError:  # another writer's name: draw again
            continue


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
