"""Reading .npy arrays without pickle, with messages that name the file and the safe fix.

numpy refuses pickled (object) data with ``allow_pickle=False``, but its message tells the user to
pass ``allow_pickle=True``: loading such a file would run whatever code it holds. smop never does;
these messages say how to store the array instead.
"""

from pathlib import Path
from typing import BinaryIO, Callable, Union

import numpy as np

from smop.data.errors import DataError


def load_npy(file: Union[str, Path, BinaryIO], name: str, error: Callable[[str], Exception] = DataError) -> np.ndarray:
    """The array in ``file`` (named ``name`` in messages); ``error(message)`` when it holds pickled
    objects or is no readable .npy array."""
    try:
        return np.load(file, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise error(
                f"{name}: holds pickled Python objects, which smop never loads (unpickling can run code); "
                "store a plain numeric array (np.save of a float or uint8 array)"
            ) from None
        raise error(f"{name}: not a readable .npy array ({e})") from None
    except EOFError as e:
        raise error(f"{name}: not a readable .npy array (truncated: {e})") from None
