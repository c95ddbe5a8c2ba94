"""Pack a trained experiment into a self-contained, relocatable folder (smop.inference.pack_layout).

What a pack holds is what decoding needs and nothing that points back into the recipe: the training
config without the paths of the training run, its pretrained parts named by hub id or copied into
the pack, the trained weights as safetensors, the decoding settings, the mouth-crop settings of the
training data, and a model card.
"""

import datetime
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

from smop.data.inputs import MODALITIES, modality_of
from smop.data.mouth_roi import CROP_SETTINGS
from smop.experiment import EXPERT_USAGE_PLOT, ExperimentDir, local_path
from smop.inference import pack_layout
from smop.inference.model_card import CardInfo, model_card
from smop.inference.pack_layout import PackError
from smop.inference.pack_results import record_results
from smop.inference.pretrained import SLOTS, PretrainedPart, hub_source, pretrained_args, resolve, stated_license
from smop.inference.settings import DecodeSettings
from smop.models.elastic import config_grid
from smop.utils.io import atomic_write, sha256_of
from smop.utils.pretrained import PretrainedError

logger = logging.getLogger(__name__)

# Keys of a training config that name files of the training run (data, shapes, outputs,
# initialisation); decoding needs none of them.
RUN_KEYS = (
    "config",
    "output_dir",
    "train_data_path_and_name_and_type",
    "valid_data_path_and_name_and_type",
    "train_shape_file",
    "valid_shape_file",
    "init_param",
    "pretrain_path",
)


@dataclass
class PackOptions:
    """How to pack an experiment (``python -m smop.bin.pack_model --help`` says each one)."""

    exp_dir: Path
    out_dir: Path
    root: Path = Path(".")
    inference_model: str = "valid.loss.ave.pth"  # the checkpoint to pack
    decode_config: Optional[Path] = None
    decode_tag: Optional[str] = None
    copy_pretrained: Sequence[str] = ()
    hub_ids: Dict[str, str] = field(default_factory=dict)
    part_licenses: Dict[str, str] = field(default_factory=dict)
    license: Optional[str] = None
    name: Optional[str] = None
    hub_id: Optional[str] = None
    corpus: Optional[str] = None
    language: Optional[str] = "en"


def _pretrained_parts(config: dict, opts: PackOptions, staging: Path) -> List[PretrainedPart]:
    """Name every pretrained part by hub id, or copy it into the pack; refuse a part that is neither."""
    parts = []
    # Options may name parts the model does not have (one set of options for a recipe's ASR and AVSR models).
    copy = set(SLOTS) if "all" in opts.copy_pretrained else set(opts.copy_pretrained)
    unknown = (copy | set(opts.hub_ids) | set(opts.part_licenses)) - set(SLOTS)
    if unknown:
        raise PretrainedError(f"pretrained parts are {list(SLOTS)}; there is no {sorted(unknown)}")
    for slot, arg, kind, value in pretrained_args(config):
        part = PretrainedPart(slot, arg, kind)
        local = local_path(opts.root, value)
        if slot in copy:
            if not local.exists():  # a hub id: copy its snapshot from the local cache
                local = Path(resolve(PretrainedPart(slot, arg, kind, **hub_source(value, local, kind)), staging))
            part.path = _copy_part(local, kind, staging / pack_layout.PRETRAINED / slot).relative_to(staging).as_posix()
        elif slot in opts.hub_ids:
            part.hub_id, part.filename = opts.hub_ids[slot], local.name if kind == "file" else None
        else:
            hub = hub_source(value, local, kind)
            if hub is None:
                raise PretrainedError(
                    f"{slot}_conf.{arg} is the local path {value}, which a pack cannot point to: name its hub id "
                    f"(--pretrained_hub_id {slot}=<org/name>) or copy it into the pack (--copy_pretrained {slot})"
                )
            part.hub_id, part.revision, part.filename = hub["hub_id"], hub.get("revision"), hub.get("filename")
        part.license = opts.part_licenses.get(slot) or (stated_license(local) if local.exists() else None)
        parts.append(part)
    return parts


def _copy_part(src: Path, kind: str, dst: Path) -> Path:
    """A model directory's top-level files (what ``from_pretrained`` reads), or the one file."""
    dst.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        shutil.copyfile(src, dst / src.name)
        return dst / src.name
    for f in sorted(src.iterdir()):
        if f.is_file() and not f.name.startswith(".") and f.suffix != ".log":
            shutil.copyfile(f, dst / f.name)
    return dst


def pack_config(config: dict, parts: List[PretrainedPart], root: Path) -> dict:
    """The training config without the paths of the training run, pretrained parts as the pack names them."""
    out = {k: v for k, v in config.items() if k not in RUN_KEYS}
    if str(out.get("dist_init_method", "")).startswith("file://"):
        out["dist_init_method"] = None
    if out.get("preprocessor_conf", {}).get("noise_file"):
        out["preprocessor_conf"] = {**out["preprocessor_conf"], "noise_file": None}  # training-time augmentation
    for part in parts:
        out[f"{part.slot}_conf"] = {**out[f"{part.slot}_conf"], part.arg: part.reference()}
    skip = {part.config_key for part in parts}
    left = [f"{key}: {value}" for key, value in _strings(out) if key not in skip and _is_path(value, root)]
    if left:
        raise PackError(f"the training config names files a pack cannot carry: {left}")
    return out


def _strings(value, key=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _strings(v, f"{key}[{i}]")
    elif isinstance(value, str):
        yield key, value


def _is_path(value: str, root: Path) -> bool:
    return value.startswith(("/", "file://")) or ("/" in value and (root / value).exists())


def write_pack(opts: PackOptions) -> Path:
    """Pack ``opts.exp_dir`` into ``opts.out_dir`` (replaced whole, so a re-run leaves no stale file)."""
    from safetensors.torch import save_file

    from smop.utils.checkpoint import load_model_state
    from smop.utils.versions import versions

    exp, root = ExperimentDir(opts.exp_dir), Path(opts.root)
    config = exp.config()
    weights_file = exp / opts.inference_model
    if not weights_file.is_file():
        raise PackError(f"{weights_file}: no such checkpoint (train first, or choose one with --inference_model)")
    decoding = exp.decoding_of(weights_file, root, opts.decode_tag)
    recorded = decoding.settings() if decoding else None
    if opts.decode_config is not None:
        settings = DecodeSettings.from_dict(
            yaml.safe_load(Path(opts.decode_config).read_text()) or {}, str(opts.decode_config)
        )
    elif recorded is not None:
        settings = recorded
    else:
        raise PackError(
            f"{exp.path}: {weights_file.name} not decoded yet, so the decoding settings are unknown: "
            "pass --decode_config"
        )
    data = exp.training_data(root)
    crop = exp.mouth_crop(data)
    if crop is None and "video" in MODALITIES[modality_of(config)]:
        logger.warning(
            f"{data.get('train', {}).get('folder')}: no {CROP_SETTINGS} (the settings data preparation "
            "cropped the mouths with); the pack can decode mouth crops given to it, but not transcribe "
            "video files. Prepare the training data again with this smop, or write the file, and pack again"
        )

    out = Path(opts.out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        parts = _pretrained_parts(config, opts, staging)
        packed_config = pack_config(config, parts, root)
        with atomic_write(staging / pack_layout.CONFIG) as f:
            yaml.safe_dump(packed_config, f, sort_keys=False)
        with atomic_write(staging / pack_layout.DECODE) as f:
            yaml.safe_dump(settings.to_dict(), f, sort_keys=False)
        state = load_model_state(weights_file)
        save_file(
            {k: v.contiguous() for k, v in state.items()}, str(staging / pack_layout.WEIGHTS), metadata={"format": "pt"}
        )
        if crop is not None:
            shutil.copyfile(crop.reference_face, staging / pack_layout.REFERENCE_FACE)
            crop.write(staging / pack_layout.MOUTH_CROP, recorded_face=pack_layout.REFERENCE_FACE)
        image = None
        if (exp / EXPERT_USAGE_PLOT).is_file():
            image = f"{pack_layout.IMAGES}/{EXPERT_USAGE_PLOT}"
            (staging / pack_layout.IMAGES).mkdir()
            shutil.copyfile(exp / EXPERT_USAGE_PLOT, staging / image)

        sets = [s.name for s in decoding.scored_sets()] if decoding else []
        scored = record_results(decoding, root, staging) if decoding else None
        card = CardInfo(
            name=opts.name or exp.path.name,
            hub_id=opts.hub_id,
            license=opts.license,
            language=opts.language,
            corpus=opts.corpus,
            config=packed_config,
            parts=parts,
            summary=exp.describe(),
            model=exp.summary(),
            data=data,
            results=decoding.wer_table(sets)[0] if sets else [],
            decode_tag=decoding and decoding.tag,
            results_settings=recorded,
            scored=scored,
            settings=settings,
            crop=crop,
            image=image,
            weights_mb=(staging / pack_layout.WEIGHTS).stat().st_size / 1e6,
            checkpoint=opts.inference_model,
        )
        with atomic_write(staging / pack_layout.CARD) as f:
            f.write(model_card(card))
        meta = {
            "smop_pack": pack_layout.FORMAT,
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "source": {
                "exp_dir": str(exp.path.resolve()),
                "checkpoint": opts.inference_model,
                "decode_tag": decoding and decoding.tag,
            },
            "modality": modality_of(packed_config),
            # What the model was trained for: the modalities and rates it decodes (an elastic model's grid).
            "grid": config_grid(packed_config),
            # The LLM is stored unquantized; loading quantizes it again as decoder_conf says.
            "quantization": (packed_config.get("decoder_conf") or {}).get("quantization"),
            "pretrained": [p.to_dict() for p in parts],
            "mouth_crop": pack_layout.MOUTH_CROP if crop is not None else None,
            "results": scored.to_dict() if scored else None,
            "versions": versions(),
            "files": {
                f.relative_to(staging).as_posix(): sha256_of(f) for f in sorted(staging.rglob("*")) if f.is_file()
            },
        }
        with atomic_write(staging / pack_layout.META) as f:
            yaml.safe_dump(meta, f, sort_keys=False)
        for f in staging.rglob("*"):  # a folder to share: readable by all, like a git checkout
            f.chmod(0o755 if f.is_dir() else 0o644)
        staging.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(f"packed {exp.path} ({opts.inference_model}) -> {out}")
    return out
