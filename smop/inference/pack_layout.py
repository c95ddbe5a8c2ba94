"""The files of a packed smop model: a folder laid out as a Hugging Face model repository.

    README.md            model card (front matter: licence, tags; results, usage, citation)
    meta.yaml            what was packed from where, versions, checksums, the pretrained parts
    config.yaml          the training config, pretrained parts named by hub id or pack path
    decode.yaml          the decoding settings (smop.inference.settings.DecodeSettings)
    model.safetensors    the trained weights only (projector, LoRA, markers)
    mouth_crop.yaml      models that read video: the crop settings of the training data
    reference_face.npy   ... and its reference face
    images/              figures of the model card
    pretrained/<slot>/   pretrained parts copied in (optional)
"""
from pathlib import Path

from smop.data.mouth_roi import CROP_SETTINGS
from smop.utils.pretrained import HUB_ID, cached_snapshot

FORMAT = 1
CARD = "README.md"
META = "meta.yaml"
CONFIG = "config.yaml"
DECODE = "decode.yaml"
WEIGHTS = "model.safetensors"
MOUTH_CROP = CROP_SETTINGS
REFERENCE_FACE = "reference_face.npy"
IMAGES = "images"
PRETRAINED = "pretrained"


class PackError(ValueError):
    pass


def locate(name_or_dir: str) -> Path:
    """A pack's folder: a local folder, or a hub id found in the local Hugging Face cache."""
    local = Path(name_or_dir).expanduser()
    if local.is_dir():
        if not (local / META).is_file():
            raise PackError(f"{local}: not a packed smop model (no {META}); pack one with python -m smop.bin.pack_model")
        return local
    if local.exists():
        raise PackError(f"{local}: a packed smop model is a folder, not a file")
    from huggingface_hub import constants

    if not HUB_ID.fullmatch(name_or_dir):
        raise PackError(f"{name_or_dir}: no such folder, and not a hub id")
    snapshot = cached_snapshot(name_or_dir)
    if snapshot is None:
        raise PackError(f"{name_or_dir}: no such folder, and this hub id is not in the local Hugging Face cache "
                        f"({constants.HF_HUB_CACHE}); fetch it once with `hf download {name_or_dir}`")
    folder = Path(snapshot)
    if not (folder / META).is_file():
        raise PackError(f"{name_or_dir} ({folder}): not a packed smop model (no {META})")
    return folder
