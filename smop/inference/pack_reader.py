"""Load a packed model (smop.inference.pack_layout) from a folder or a hub id in the local HF cache."""

import argparse
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import yaml

from smop.data.mouth_roi import MouthCropSettings
from smop.inference import pack_layout
from smop.inference.pretrained import PretrainedPart, resolve, resolved_revision, with_parts
from smop.inference.settings import DecodeSettings
from smop.utils.checkpoint import check_safetensors
from smop.utils.io import sha256_of
from smop.utils.pretrained import refuse_custom_code

logger = logging.getLogger(__name__)

# The files whose checksums in meta.yaml are checked at load: these, and the pretrained parts the
# pack holds (hashing costs about 0.75 s a GB, on top of reading the weights, which the page cache
# then serves). The card and its images are free to edit.
CHECKED = (
    pack_layout.CONFIG,
    pack_layout.DECODE,
    pack_layout.WEIGHTS,
    pack_layout.MOUTH_CROP,
    pack_layout.REFERENCE_FACE,
)


def check_files(folder: Path, listed: dict) -> None:
    """Each file of CHECKED and of pretrained/ against the checksum meta.yaml lists for it; a file
    in pretrained/ that meta.yaml does not list is refused too (transformers reads what a model
    folder holds: an added index or tokenizer file would change what is built)."""
    parts = folder / pack_layout.PRETRAINED
    held = sorted(f.relative_to(folder).as_posix() for f in parts.rglob("*") if f.is_file()) if parts.is_dir() else []
    for name in held:
        if name not in listed:
            raise pack_layout.PackError(
                f"{folder / name}: not among the files {pack_layout.META} lists (added after packing); remove it"
            )
    for name in [*CHECKED, *sorted(n for n in listed if n.startswith(pack_layout.PRETRAINED + "/"))]:
        want = listed.get(name)
        if want is None:
            continue
        if not (folder / name).is_file():
            raise pack_layout.PackError(f"{folder}: {name} is missing")
        if sha256_of(folder / name) != want:
            raise pack_layout.PackError(
                f"{folder / name}: does not match the checksum in {pack_layout.META} (damaged or edited)"
            )


@dataclass
class PackedModel:
    folder: Path
    meta: dict
    config: dict  # pretrained parts as local paths, ready to build the model from
    settings: DecodeSettings
    mouth_crop: Optional[MouthCropSettings]
    parts: List[PretrainedPart]

    @property
    def grid(self) -> dict:
        """The modalities and rates the model was trained for (meta.yaml's, or its config's in a pack
        from before packs recorded them)."""
        from smop.models.elastic import config_grid

        return self.meta.get("grid") or config_grid(self.config)

    @contextlib.contextmanager
    def reading_config(self):
        """A key the pack's config lacks, met while its model and inputs are built, or what the config
        check finds, as a one-line PackError naming config.yaml (the task reads the config as
        attributes: AttributeError otherwise; the check lists its problems on lines of their own)."""
        from smop.tasks.config_check import ConfigError

        try:
            yield
        except ConfigError as e:
            head, *problems = [line.strip() for line in str(e).splitlines() if line.strip()]
            raise pack_layout.PackError(f"{self.folder / pack_layout.CONFIG}: {head} {'; '.join(problems)}") from None
        except AttributeError as e:
            if not isinstance(getattr(e, "obj", None), argparse.Namespace):
                raise
            raise pack_layout.PackError(
                f"{self.folder / pack_layout.CONFIG}: no {e.name!r} key, which every packed config has "
                "(damaged or edited): pack the model again"
            ) from None

    def build_model(self, device: str = "cpu", quantization=None):
        """The model with its trained weights (read without pickle), and its config as a Namespace.
        The LLM is quantized as the config says (the pack holds it unquantized), or as
        ``quantization`` overrides (SmopAVSRTask.build_trained_model)."""
        from smop.tasks.avsr import SmopAVSRTask

        return SmopAVSRTask.build_trained_model(
            argparse.Namespace(**self.config), self.folder / pack_layout.WEIGHTS, device, quantization
        )


def weight_files(part: Path) -> List[Path]:
    """The .safetensors files of a pretrained part (a file, or a model folder's top level)."""
    if part.is_dir():
        return sorted(part.glob("*.safetensors"))
    return [part] if part.suffix == ".safetensors" else []


def _yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise pack_layout.PackError(f"{path}: cannot read: {e}") from e


def read_pack(name_or_dir: str) -> PackedModel:
    """A pack's settings with its pretrained parts found locally (in the pack or the HF cache)."""
    folder = pack_layout.locate(str(name_or_dir))
    meta = _yaml(folder / pack_layout.META)
    version = meta.get("smop_pack")
    if version != pack_layout.FORMAT:
        raise pack_layout.PackError(f"{folder}: pack format {version!r}; this smop reads format {pack_layout.FORMAT}")
    check_files(folder, meta.get("files") or {})
    check_safetensors(folder / pack_layout.WEIGHTS)
    parts = [PretrainedPart(**p) for p in meta.get("pretrained", [])]
    local = {}
    for part in parts:
        local[part.config_key] = resolve(part, folder)
        if part.kind == "dir":  # before anything builds from it; one line, as for the pack's other files
            refuse_custom_code(Path(local[part.config_key]), part.config_key)
        for weights in weight_files(Path(local[part.config_key])):
            check_safetensors(weights)
        found = resolved_revision(local[part.config_key])
        if part.revision and found and found != part.revision:
            logger.warning(
                f"{part.config_key}: {part.hub_id} is revision {found} in the local cache; the model "
                f"was trained with revision {part.revision}"
            )
    config = with_parts(_yaml(folder / pack_layout.CONFIG), local)
    settings = DecodeSettings.from_dict(_yaml(folder / pack_layout.DECODE), str(folder / pack_layout.DECODE))
    crop = MouthCropSettings.read(folder / meta["mouth_crop"]) if meta.get("mouth_crop") else None
    return PackedModel(folder, meta, config, settings, crop, parts)
