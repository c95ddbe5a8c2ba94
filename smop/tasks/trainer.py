"""ESPnet's Trainer with crash-safe checkpoint files.

The trainer writes ``checkpoint.pth`` and ``<N>epoch.pth`` in place; a job killed while writing
leaves a truncated file that ``--resume true`` then trusts. During training every ``torch.save``
to a path goes to a temporary file in the same directory, renamed over the target when complete.
"""
import contextlib
import os
import tempfile
from pathlib import Path

import torch
from espnet2.train.trainer import Trainer


@contextlib.contextmanager
def atomic_torch_save():
    original = torch.save

    def save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)):
            return original(obj, f, *args, **kwargs)
        target = Path(f)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            original(obj, tmp, *args, **kwargs)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    torch.save = save
    try:
        yield
    finally:
        torch.save = original


class SmopTrainer(Trainer):
    @classmethod
    def run(cls, *args, **kwargs):
        with atomic_torch_save():
            return super().run(*args, **kwargs)
