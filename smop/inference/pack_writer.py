"""Pack a trained experiment into a self-contained, relocatable folder (smop.inference.pack_layout).

What a pack holds is what decoding needs and nothing that points back into the recipe: the training
config without the paths of the training run, its pretrained parts named by hub id or copied into
the pack, the trained weights as safetensors, the decoding settings, the mouth-crop settings of the
training data, and a model card.
"""
import datetime
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

from smop.data.datadir import read_table
from smop.data.inputs import INPUTS, MODALITIES, VIDEO_FPS, modality_of
from smop.data.mouth_roi import CROP_SETTINGS, MouthCropSettings
from smop.inference import pack_layout as layout
from smop.inference.model_card import CardInfo, model_card
from smop.inference.pretrained import SLOTS, PretrainedPart, hub_source, pretrained_args, resolve, stated_license
from smop.inference.settings import DecodeSettings
from smop.utils.io import atomic_write, sha256_of
from smop.utils.pretrained import PretrainedError
from smop.utils.results import NOISY_SET, describe, model_summary, wer_table

logger = logging.getLogger(__name__)

# Keys of a training config that name files of the training run (data, shapes, outputs,
# initialisation); decoding needs none of them.
RUN_KEYS = ("config", "output_dir", "train_data_path_and_name_and_type", "valid_data_path_and_name_and_type",
            "train_shape_file", "valid_shape_file", "init_param", "pretrain_path")


@dataclass
class PackOptions:
    """How to pack an experiment (``python -m smop.bin.pack_model --help`` says each one)."""

    exp_dir: Path
    out_dir: Path
    root: Path = Path(".")
    checkpoint: str = "valid.loss.ave.pth"
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


def _local(root: Path, value) -> Path:
    path = Path(value)
    return path if path.is_absolute() else root / path


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
        local = _local(opts.root, value)
        if slot in copy:
            if not local.exists():  # a hub id: copy its snapshot from the local cache
                local = Path(resolve(PretrainedPart(slot, arg, kind, **hub_source(value, local, kind)), staging))
            part.path = _copy_part(local, kind, staging / layout.PRETRAINED / slot).relative_to(staging).as_posix()
        elif slot in opts.hub_ids:
            part.hub_id, part.filename = opts.hub_ids[slot], local.name if kind == "file" else None
        else:
            hub = hub_source(value, local, kind)
            if hub is None:
                raise PretrainedError(
                    f"{slot}_conf.{arg} is the local path {value}, which a pack cannot point to: name its hub id "
                    f"(--pretrained_hub_id {slot}=<org/name>) or copy it into the pack (--copy_pretrained {slot})")
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
        raise layout.PackError(f"the training config names files a pack cannot carry: {left}")
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


def training_data(config: dict, root: Path) -> Dict[str, dict]:
    """The training and validation data dirs (the folders of their inputs) with their sizes."""
    sets = {}
    for which in ("train", "valid"):
        entries = config.get(f"{which}_data_path_and_name_and_type") or []
        if not entries:
            continue
        by_name = {name: path for path, name, _ in entries}
        path = by_name.get(INPUTS["video"].name) or by_name.get(INPUTS["audio"].name) or entries[0][0]
        folder = _local(root, path).parent
        info = {"dir": Path(path).parent.as_posix(), "folder": folder}
        if (folder / "text").is_file():
            info["utterances"] = len(read_table(folder / "text"))
        if (folder / "utt2num_frames").is_file():
            frames = sum(int(n) for _, n in read_table(folder / "utt2num_frames"))
            info["hours"] = frames / VIDEO_FPS / 3600
        sets[which] = info
    return sets


def _decode_records(exp: Path, decode_tag: str) -> Dict[Path, dict]:
    """Each job's decode_config.yaml under the decoding: its ``args``."""
    return {f: (yaml.safe_load(f.read_text()) or {}).get("args", {})
            for f in sorted((exp / decode_tag).glob("**/decode_config.yaml"))}


def recorded_decode_settings(exp: Path, decode_tag: str) -> Optional[DecodeSettings]:
    """The settings the experiment's test sets were decoded with (each job's decode_config.yaml)."""
    found = {}
    for f, args in _decode_records(exp, decode_tag).items():
        found.setdefault(DecodeSettings.from_dict(args, str(f)), f)
    if len(found) > 1:
        raise layout.PackError(f"{exp / decode_tag}: the sets were decoded with different settings "
                               f"({', '.join(str(f) for f in found.values())}); choose with --decode_config")
    return next(iter(found), None)


def decoded_checkpoints(exp: Path, decode_tag: str) -> List[str]:
    """The checkpoints the decoding's jobs loaded (their --model_file), as recorded."""
    return sorted({str(args["model_file"]) for args in _decode_records(exp, decode_tag).values() if args.get("model_file")})


def _is_checkpoint(recorded: str, weights_file: Path, root: Path) -> bool:
    path = _local(root, recorded)
    if path.exists() and weights_file.exists():
        return os.path.samefile(path, weights_file)  # valid.loss.ave.pth links to valid.loss.ave_<N>best.pth
    return path.name == weights_file.name


def decode_tag_of(exp: Path, given: Optional[str], weights_file: Path, root: Path) -> Optional[str]:
    """The decoding whose results go on the card: one of the packed checkpoint, never another's."""
    def of_this(tag):
        recorded = decoded_checkpoints(exp, tag)
        return all(_is_checkpoint(r, weights_file, root) for r in recorded), recorded

    if given:
        if not (exp / given).is_dir():
            raise layout.PackError(f"{exp / given}: no such decoding directory")
        ok, recorded = of_this(given)
        if not ok:
            raise layout.PackError(f"{exp / given} decoded {', '.join(recorded)}, not {weights_file}: its results are "
                                   f"not this checkpoint's. Decode {weights_file.name} first (run.sh --stage 4 "
                                   f"--inference_model {weights_file.name}) and pack with its decoding")
        return given
    tags = sorted(d.name for d in exp.glob("decode_*") if d.is_dir())
    mine = [t for t in tags if of_this(t)[0]]
    if len(mine) > 1:
        raise layout.PackError(f"{exp} holds several decodings of {weights_file.name} {mine}: choose one with --decode_tag")
    if not mine and tags:
        logger.info(f"{exp}: no decoding of {weights_file.name} (only of other checkpoints: {', '.join(tags)})")
    return mine[0] if mine else None


def scored_sets(exp: Path, decode_tag: Optional[str]) -> List[str]:
    """The scored sets, each clean set before its noisy copies from the lowest SNR up."""
    if decode_tag is None:
        return []
    names = [d.parent.parent.name for d in (exp / decode_tag).glob("*/score_wer/wer.json")]

    def order(name):
        m = NOISY_SET.match(name)
        return (m.group(1), 1, float(m.group(2))) if m else (name, 0, 0.0)

    return sorted(names, key=order)


def mouth_crop_of(config: dict, data: Dict[str, dict]) -> Optional[MouthCropSettings]:
    """The crop settings recorded with the training data (None, with a warning, if there are none)."""
    if "video" not in MODALITIES[modality_of(config)]:
        return None
    folder = data.get("train", {}).get("folder")
    if folder is None or not (folder / CROP_SETTINGS).is_file():
        logger.warning(f"{folder}: no {CROP_SETTINGS} (the settings data preparation cropped the mouths with); "
                       "the pack can decode mouth crops given to it, but not transcribe video files. Prepare the "
                       "training data again with this smop, or write the file, and pack again")
        return None
    return MouthCropSettings.read(folder / CROP_SETTINGS)


def write_pack(opts: PackOptions) -> Path:
    """Pack ``opts.exp_dir`` into ``opts.out_dir`` (replaced whole, so a re-run leaves no stale file)."""
    from safetensors.torch import save_file

    from smop.utils.checkpoint import load_model_state
    from smop.utils.versions import versions

    exp, root = Path(opts.exp_dir), Path(opts.root)
    config_file = exp / "config.yaml"
    if not config_file.is_file():
        raise layout.PackError(f"{exp}: no config.yaml (not a training directory)")
    config = yaml.safe_load(config_file.read_text())
    weights_file = exp / opts.checkpoint
    if not weights_file.is_file():
        raise layout.PackError(f"{weights_file}: no such checkpoint (train first, or choose one with --inference_model)")
    decode_tag = decode_tag_of(exp, opts.decode_tag, weights_file, root)
    recorded = recorded_decode_settings(exp, decode_tag) if decode_tag else None
    if opts.decode_config is not None:
        settings = DecodeSettings.from_dict(yaml.safe_load(Path(opts.decode_config).read_text()) or {}, str(opts.decode_config))
    elif recorded is not None:
        settings = recorded
    else:
        raise layout.PackError(f"{exp}: {weights_file.name} not decoded yet, so the decoding settings are unknown: "
                               "pass --decode_config")
    data = training_data(config, root)
    crop = mouth_crop_of(config, data)

    out = Path(opts.out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        parts = _pretrained_parts(config, opts, staging)
        packed_config = pack_config(config, parts, root)
        with atomic_write(staging / layout.CONFIG) as f:
            yaml.safe_dump(packed_config, f, sort_keys=False)
        with atomic_write(staging / layout.DECODE) as f:
            yaml.safe_dump(settings.to_dict(), f, sort_keys=False)
        state = load_model_state(weights_file)
        save_file({k: v.contiguous() for k, v in state.items()}, str(staging / layout.WEIGHTS), metadata={"format": "pt"})
        if crop is not None:
            shutil.copyfile(crop.reference_face, staging / layout.REFERENCE_FACE)
            crop.write(staging / layout.MOUTH_CROP, recorded_face=layout.REFERENCE_FACE)
        image = None
        if (exp / "expert_usage.png").is_file():
            image = f"{layout.IMAGES}/expert_usage.png"
            (staging / layout.IMAGES).mkdir()
            shutil.copyfile(exp / "expert_usage.png", staging / image)

        sets = scored_sets(exp, decode_tag)
        card = CardInfo(
            name=opts.name or exp.name, hub_id=opts.hub_id, license=opts.license, language=opts.language,
            corpus=opts.corpus, config=packed_config, parts=parts, summary=describe(exp),
            projector=model_summary(exp)["projector"], data=data,
            results=wer_table(exp, decode_tag, sets)[0] if sets else [], decode_tag=decode_tag,
            results_settings=recorded, settings=settings, crop=crop, image=image,
            weights_mb=(staging / layout.WEIGHTS).stat().st_size / 1e6, checkpoint=opts.checkpoint,
        )
        with atomic_write(staging / layout.CARD) as f:
            f.write(model_card(card))
        meta = {
            "smop_pack": layout.FORMAT,
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "source": {"exp_dir": str(exp.resolve()), "checkpoint": opts.checkpoint, "decode_tag": decode_tag},
            "modality": modality_of(packed_config),
            "pretrained": [p.to_dict() for p in parts],
            "mouth_crop": layout.MOUTH_CROP if crop is not None else None,
            "versions": versions(),
            "files": {f.relative_to(staging).as_posix(): sha256_of(f)
                      for f in sorted(staging.rglob("*")) if f.is_file()},
        }
        with atomic_write(staging / layout.META) as f:
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
    logger.info(f"packed {exp} ({opts.checkpoint}) -> {out}")
    return out
