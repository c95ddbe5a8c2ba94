"""ESPnet's Trainer with crash-safe checkpoint files, and pickle-free checkpoint loading.

The trainer writes ``checkpoint.pth`` and ``<N>epoch.pth`` in place; a job killed while writing
leaves a truncated file that ``--resume true`` then trusts. During training every ``torch.save``
to a path goes to a temporary file in the same directory, renamed over the target when complete.

ESPnet reads ``--init_param`` files, ``checkpoint.pth`` (resume) and ``<N>epoch.pth`` (averaging)
with ``weights_only=False``, which runs whatever code a tampered file holds.
:func:`weights_only_torch_load` (entered by SmopAVSRTask.main_worker around all of training) makes
every ``torch.load`` weights-only, with numpy scalars (the reporter's statistics) allowed.
"""

import contextlib
import datetime
import os
from pathlib import Path

import numpy as np
import torch
from espnet2.train.trainer import Trainer

from smop.experiment import ExperimentDir
from smop.utils.io import temporary_beside

# plain-data types found in ESPnet's reporter state (numpy scalars, elapsed times); none runs code
_SAFE_GLOBALS = [
    np._core.multiarray.scalar,
    np.dtype,
    *{type(np.dtype(t)) for t in "?bBhHiIlLqQefdgFDG"},
    datetime.timedelta,
]


@contextlib.contextmanager
def atomic_torch_save():
    original = torch.save

    def save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)):
            return original(obj, f, *args, **kwargs)
        target = Path(f)
        fd, tmp = temporary_beside(target)
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


@contextlib.contextmanager
def weights_only_torch_load():
    original = torch.load

    def load(*args, **kwargs):
        kwargs["weights_only"] = True
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


class SmopTrainer(Trainer):
    @classmethod
    def run(
        cls,
        model,
        optimizers,
        schedulers,
        train_iter_factory,
        valid_iter_factory,
        plot_attention_iter_factory,
        trainer_options,
        distributed_option,
    ):
        if not distributed_option.distributed or distributed_option.dist_rank == 0:
            # What was trained, as data for RESULTS.md and model cards (no log to parse).
            ExperimentDir(trainer_options.output_dir).write_summary(model.summary())
        with atomic_torch_save():
            return super().run(
                model,
                optimizers,
                schedulers,
                train_iter_factory,
                valid_iter_factory,
                plot_attention_iter_factory,
                trainer_options,
                distributed_option,
            )
