"""ESPnet data types for smop's inputs, registered in ``espnet2.train.dataset.DATA_TYPES``.

  wav16k     <utt> <path>   16 kHz mono audio: any soundfile format, a Kaldi pipe (``sox a.mp3
                            -t wav -r 16000 -c 1 - |``) or an ark offset (``a.ark:42``), the last
                            two read through kaldiio as Kaldi and ESPnet read them; another rate
                            or channel count is an error naming the file and the utterance.
  mouth_npy  <utt> <path>   (T, H, W) uint8 grayscale mouth crops at 25 fps, saved with numpy.

Names must not start with an existing type name: ESPnet matches types with ``re.match``.
"""

import collections.abc
import re
from typing import Dict, Tuple

import kaldiio
import numpy as np
import soundfile
from espnet2.train import dataset as espnet_dataset

from smop.data.datadir import read_table
from smop.data.errors import DataError
from smop.data.inputs import INPUTS, SAMPLE_RATE
from smop.data.npy import load_npy

_KALDI_ENTRY = re.compile(r"(\|\s*$)|(:\d+(\[[^\]]*\])?$)")  # "cmd |" or "file.ark:offset[slice]"


def read_audio(value: str) -> Tuple[int, np.ndarray]:
    """One wav.scp value -> (sample rate, (S, C) float32 in [-1, 1])."""
    if _KALDI_ENTRY.search(value):
        loaded = kaldiio.load_mat(value)
        if not isinstance(loaded, tuple):
            raise DataError(f"{value}: holds a matrix, not audio")
        rate, wave = loaded
        wave = np.asarray(wave)
        if wave.dtype.kind in "iu":  # PCM: scale to [-1, 1] as soundfile does
            wave = wave.astype(np.float32) / float(np.iinfo(wave.dtype).max + 1)
        return int(rate), wave.astype(np.float32, copy=False).reshape(wave.shape[0], -1)
    wave, rate = soundfile.read(value, dtype="float32", always_2d=True)
    return rate, wave


def audio_samples(value: str) -> int:
    """Samples in one wav.scp entry, without decoding a plain file."""
    if _KALDI_ENTRY.search(value):
        return read_audio(value)[1].shape[0]
    return soundfile.info(value).frames


def read_scp(path: str) -> Dict[str, str]:
    """An scp file as {utterance: value}; empty lines, values or repeated ids are errors."""
    return dict(read_table(path, unique=True))


class _ScpMapping(collections.abc.Mapping):
    def __init__(self, path: str):
        self.path = path
        self.table = read_scp(path)

    def __len__(self):
        return len(self.table)

    def __iter__(self):
        return iter(self.table)

    def keys(self):
        return self.table.keys()


class Wav16kReader(_ScpMapping):
    def __getitem__(self, utt: str) -> np.ndarray:
        path = self.table[utt]
        try:
            rate, wave = read_audio(path)
        except Exception as e:
            raise DataError(f"utterance {utt}: cannot read audio {path}: {e}") from e
        if rate != SAMPLE_RATE:
            raise DataError(f"utterance {utt}: {path} is {rate} Hz, expected {SAMPLE_RATE} (resample in data prep)")
        if wave.shape[1] != 1:
            raise DataError(f"utterance {utt}: {path} has {wave.shape[1]} channels, expected mono")
        if wave.shape[0] == 0:
            raise DataError(f"utterance {utt}: {path} is empty")
        return wave[:, 0]


class MouthNpyReader(_ScpMapping):
    def __getitem__(self, utt: str) -> np.ndarray:
        path = self.table[utt]
        try:
            frames = load_npy(path, f"utterance {utt}: mouth crops {path}")
        except OSError as e:
            raise DataError(f"utterance {utt}: cannot read mouth crops {path}: {e}") from e
        if frames.ndim != 3 or frames.dtype != np.uint8 or frames.shape[0] == 0:
            raise DataError(f"utterance {utt}: {path} holds {frames.dtype} {frames.shape}, expected (T>0, H, W) uint8")
        return frames


def _wav16k(path, float_dtype=None):
    return Wav16kReader(path)


def _mouth_npy(path):
    return MouthNpyReader(path)


def register_data_types() -> None:
    espnet_dataset.DATA_TYPES.setdefault(
        INPUTS["audio"].data_type, dict(func=_wav16k, kwargs=["float_dtype"], help=__doc__)
    )
    espnet_dataset.DATA_TYPES.setdefault(INPUTS["video"].data_type, dict(func=_mouth_npy, kwargs=[], help=__doc__))
