"""The pretrained parts of a model (frozen encoders, LLM): where a training config takes them from,
how a pack names them (a hub id, or a path inside the pack) and how a pack's names are found again.

A component declares the constructor arguments that name pretrained weights in its class attribute
``PRETRAINED_ARGS`` (smop.utils.component.AbsComponent).
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from smop.utils.pretrained import HUB_ID, PretrainedError, cached_snapshot

# The config keys of the components that may hold pretrained weights, in the model's order.
SLOTS = ("audio_encoder", "video_encoder", "decoder")
# A file or directory inside the Hugging Face cache: .../models--<org>--<name>/snapshots/<revision>[/<file>]
_HF_CACHE_PATH = re.compile(r"/models--(?P<repo>[^/]+)/snapshots/(?P<revision>[^/]+)(?:/(?P<file>.+))?$")


@dataclass
class PretrainedPart:
    """One pretrained part of a model, as a pack records it.

    slot: the component (audio_encoder, video_encoder, decoder); arg: its constructor argument;
    kind: "dir" (a HF model directory) or "file"; then either ``path`` (inside the pack) or
    ``hub_id`` (+ ``filename`` for a file, ``revision`` when known); ``license`` as its source states it.
    """

    slot: str
    arg: str
    kind: str
    path: Optional[str] = None
    hub_id: Optional[str] = None
    filename: Optional[str] = None
    revision: Optional[str] = None
    license: Optional[str] = None

    @property
    def config_key(self) -> str:
        return f"{self.slot}_conf.{self.arg}"

    def reference(self) -> str:
        """How the part reads in a pack's config.yaml: a path inside the pack or the hub id."""
        if self.path is not None:
            return self.path
        return f"{self.hub_id}/{self.filename}" if self.filename else self.hub_id

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def pretrained_args(config: dict) -> List[tuple]:
    """(slot, argument, kind, value) of every pretrained part the config's model is built from."""
    from smop.data.inputs import MODALITIES, modality_of
    from smop.tasks.avsr import audio_encoder_choices, component_used, decoder_choices, video_encoder_choices

    modalities = MODALITIES[modality_of(config)]
    choices = {
        "audio_encoder": audio_encoder_choices,
        "video_encoder": video_encoder_choices,
        "decoder": decoder_choices,
    }
    found = []
    for slot in SLOTS:
        if not component_used(slot, modalities):
            continue
        cls = choices[slot].get_class(config.get(slot, choices[slot].default))
        conf = config.get(f"{slot}_conf") or {}
        for arg, kind in cls.PRETRAINED_ARGS.items():
            if conf.get(arg) is None:
                raise PretrainedError(f"{slot}_conf.{arg} is not set in the config")
            found.append((slot, arg, kind, str(conf[arg])))
    return found


def hub_source(value: str, local: Path, kind: str) -> Optional[dict]:
    """The hub id (and revision, file name) a config value stands for: a path inside the HF cache,
    or a hub id found in the local cache; None for another local path (``local``: the value as a
    path). A value that is neither a local path nor a cached hub id is an error."""
    if local.exists():
        for path in _link_chain(local):
            m = _HF_CACHE_PATH.search(str(path))
            if m and not (kind == "dir" and m.group("file")):  # a folder below a snapshot is no repository
                return {
                    "hub_id": m.group("repo").replace("--", "/"),
                    "revision": m.group("revision"),
                    "filename": m.group("file") if kind == "file" else None,
                }
        return None  # a plain local path
    snapshot = cached_snapshot(value) if kind == "dir" and HUB_ID.fullmatch(value) else None
    if snapshot is not None:
        return {"hub_id": value, "revision": resolved_revision(snapshot)}
    raise PretrainedError(f"{value}: neither a local path ({local}) nor a hub id in the local Hugging Face cache")


def _link_chain(path: Path) -> List[Path]:
    """``path`` and each path its symbolic links lead to (recipes link pretrained/<name> to the
    HF cache; a cached file is itself a link to a blob, whose name says nothing)."""
    chain, path = [], path.absolute()
    for _ in range(16):
        chain.append(path.parent.resolve() / path.name)
        if not path.is_symlink():
            break
        path = path.parent / os.readlink(path)
    return chain


def stated_license(path: Path) -> Optional[str]:
    """The ``license`` of a model card (README.md front matter) in the part's folder, if any."""
    folder = path if path.is_dir() else path.parent
    card = folder / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    front = text[3:].split("\n---", 1)[0]
    try:
        meta = yaml.safe_load(front) or {}
    except yaml.YAMLError:
        return None
    value = meta.get("license") if isinstance(meta, dict) else None
    if value == "other" and meta.get("license_name"):
        value = str(meta["license_name"])
    return str(value) if value else None


def resolve(part: PretrainedPart, pack_dir: Path) -> str:
    """The local path of a pack's pretrained part: inside the pack, or in the local HF cache
    (nothing is downloaded)."""
    if part.path is not None:
        local = pack_dir / part.path
        if not local.exists():
            raise PretrainedError(f"{pack_dir}: {part.config_key} names {part.path}, which the pack does not hold")
        return str(local)
    from huggingface_hub import constants, hf_hub_download, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        if part.kind == "file":
            local = hf_hub_download(part.hub_id, part.filename, local_files_only=True)
        else:
            local = snapshot_download(part.hub_id, local_files_only=True)
    except LocalEntryNotFoundError as e:
        what = f"{part.hub_id} {part.filename}" if part.filename else part.hub_id
        raise PretrainedError(
            f"{part.config_key}: {what} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}); "
            f"fetch it once with `hf download {what}` (smop never downloads)"
        ) from e
    return local


def resolved_revision(local: str) -> Optional[str]:
    m = _HF_CACHE_PATH.search(local)
    return m.group("revision") if m else None


def with_parts(config: dict, values: Dict[str, str]) -> dict:
    """A copy of ``config`` with the pretrained arguments set: ``values`` maps a config key
    (``decoder_conf.model_name_or_path``) to its new value."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
    for key, value in values.items():
        conf, arg = key.split(".", 1)
        out[conf] = {**(out.get(conf) or {}), arg: value}
    return out
