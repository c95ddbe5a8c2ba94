"""What the models read: the input rates, and for each modality the file of a Kaldi data dir, the
ESPnet data name (the model's argument) and the ESPnet data type (smop.data.loaders).

The table that recipes (through ``smop.bin.data_args``), training, decoding, packing and the
Python API read the input files and rates from. The data names ("speech", "video", "text") are
also the model's argument names, so code that calls the model spells them too.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Tuple, Union

SAMPLE_RATE = 16000  # Hz, every audio input
VIDEO_FPS = 25  # frames per second of every video input (mouth crops)
SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS  # 640 audio samples per video frame


@dataclass(frozen=True)
class Input:
    scp: str  # the file in a Kaldi data dir
    name: str  # ESPnet's data name: the model's argument
    data_type: str  # ESPnet's data type (registered by smop.data.loaders)

    def triple(self, data_dir: Union[str, Path]) -> Tuple[str, str, str]:
        """``(path, name, type)``, an ESPnet ``--*_data_path_and_name_and_type``."""
        return str(Path(data_dir) / self.scp), self.name, self.data_type


INPUTS: Dict[str, Input] = {
    "audio": Input("wav.scp", "speech", "wav16k"),
    "video": Input("video.scp", "video", "mouth_npy"),
}
TEXT = Input("text", "text", "text")
# The config key ``modality`` -> the inputs it reads (ASR, VSR, AVSR).
MODALITIES: Dict[str, Tuple[str, ...]] = {"audio": ("audio",), "video": ("video",), "audiovisual": ("audio", "video")}
DEFAULT_MODALITY = "audiovisual"


def modality_of(config: Mapping) -> str:
    """The ``modality`` of a training config (a mapping of its keys), its default when unset."""
    return config.get("modality", DEFAULT_MODALITY)


def data_triples(data_dir: Union[str, Path], modality: str, text: bool = False) -> List[Tuple[str, str, str]]:
    """The inputs of a data dir that a model of ``modality`` reads (and its transcripts)."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
    return [INPUTS[m].triple(data_dir) for m in MODALITIES[modality]] + ([TEXT.triple(data_dir)] if text else [])
