"""The files of a packed smop model: a folder laid out as a Hugging Face model repository.

README.md            model card (front matter: licence, tags; results, usage, citation)
meta.yaml            what was packed from where, versions, checksums, the pretrained parts, and
                     what each scored test set was (smop.inference.pack_results)
config.yaml          the training config, pretrained parts named by hub id or pack path
decode.yaml          the decoding settings (smop.inference.settings.DecodeSettings)
model.safetensors    the trained weights only (projector, LoRA, markers)
mouth_crop.yaml      models that read video: the crop settings of the training data
reference_face.npy   ... and its reference face
images/              figures of the model card
hypotheses/<set>.txt the hypotheses of each test set the card reports (smop.inference.pack_results)
pretrained/<slot>/   pretrained parts copied in (optional)
"""

from pathlib import Path

from smop.data.mouth_roi import CROP_SETTINGS
from smop.utils.pretrained import locate_dir

FORMAT = 1
CARD = "README.md"
META = "meta.yaml"
CONFIG = "config.yaml"
DECODE = "decode.yaml"
WEIGHTS = "model.safetensors"
MOUTH_CROP = CROP_SETTINGS
REFERENCE_FACE = "reference_face.npy"
IMAGES = "images"
HYPOTHESES = "hypotheses"
PRETRAINED = "pretrained"


class PackError(ValueError):
    pass


def locate(name_or_dir: str) -> Path:
    """A pack's folder: a local folder, or a hub id found in the local Hugging Face cache."""

    def fail(reason: str, path: Path) -> PackError:
        if reason == "unmarked":
            where = path if path == Path(name_or_dir).expanduser() else f"{name_or_dir} ({path})"
            return PackError(
                f"{where}: not a packed smop model (no {META}); pack one with python -m smop.bin.pack_model"
            )
        if reason == "file":
            return PackError(f"{path}: a packed smop model is a folder, not a file")
        if reason == "missing":
            return PackError(f"{name_or_dir}: no such folder, and not a hub id")
        from huggingface_hub import constants

        return PackError(
            f"{name_or_dir}: no such folder, and this hub id is not in the local Hugging Face cache "
            f"({constants.HF_HUB_CACHE}); fetch it once with `hf download {name_or_dir}`"
        )

    return locate_dir(name_or_dir, META, fail)
