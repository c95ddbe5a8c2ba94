"""AV-HuBERT checkpoints: fairseq pickle -> safetensors conversion, and safe loading.

The official ``*_vox_iter5.pt`` files are fairseq pickles that hold fairseq and omegaconf objects
beside the weights. :func:`convert_fairseq_checkpoint` reads such a file once, with an unpickler
that builds tensors and plain containers only (every other class becomes an inert stub, so no code
from the file runs), and writes the ``model`` tensors to safetensors with the resolved encoder
configuration in the metadata. Run time only ever reads the safetensors file.
"""

import hashlib
import json
import logging
import pickle
import types
from pathlib import Path
from typing import Dict, Tuple, Union

import torch
from safetensors import safe_open
from safetensors.torch import save_file

logger = logging.getLogger(__name__)

FORMAT = "smop-avhubert-v1"

# AVHubertConfig defaults (av_hubert/avhubert/hubert.py): the checkpoint's cfg.model only holds the
# keys its YAML set, so the rest must come from here.
AVHUBERT_DEFAULTS = dict(
    encoder_layers=12,
    encoder_embed_dim=768,
    encoder_ffn_embed_dim=3072,
    encoder_attention_heads=12,
    layer_norm_first=False,
    conv_pos=128,
    conv_pos_groups=16,
    resnet_relu_type="prelu",
    modality_fuse="concat",
    audio_feat_dim=104,
    resnet_widths=[64, 128, 256, 512],  # not a fairseq option: read off the weights
)

# Pretraining-only tensors an encoder never uses.
PRETRAINING_KEYS = ("mask_emb", "label_embs_concat", "final_proj.weight", "final_proj.bias")

_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
}


class _Stub:
    """Stands in for any class the checkpoint names (fairseq Dictionary, omegaconf, argparse...)."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def __call__(self, *args, **kwargs):
        return _Stub()


class _StubUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        return type(name, (_Stub,), {"__module__": "smop.stub." + module})


_stub_pickle = types.SimpleNamespace(
    Unpickler=_StubUnpickler,
    load=lambda f, **kw: _StubUnpickler(f, **kw).load(),
    __name__="smop_stub_pickle",
)


def _plain(obj):
    """Stub-free copy of a config object (dicts, lists, scalars)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return None


def resolve_config(model_cfg: dict, state: Dict[str, torch.Tensor]) -> dict:
    """cfg.model overlaid on the AVHubertConfig defaults, checked against the tensor shapes."""
    cfg = dict(AVHUBERT_DEFAULTS)
    cfg.update({k: v for k, v in (model_cfg or {}).items() if k in AVHUBERT_DEFAULTS and v is not None})
    dim = state["post_extract_proj.weight"].shape[0]
    ffn = state["encoder.layers.0.fc1.weight"].shape[0]
    n_layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layers."))
    shapes = dict(encoder_embed_dim=dim, encoder_ffn_embed_dim=ffn, encoder_layers=n_layers)
    for key, value in shapes.items():
        if key in (model_cfg or {}) and model_cfg[key] != value:
            raise ValueError(f"AV-HuBERT config says {key}={model_cfg[key]} but the weights give {value}")
        cfg[key] = value
    if "encoder_attention_heads" not in (model_cfg or {}):
        cfg["encoder_attention_heads"] = dim // 64  # 16 for Large, 12 for Base: head dim 64
    cfg["conv_pos"] = state["encoder.pos_conv.0.weight_v"].shape[2]
    trunk = "feature_extractor_video.resnet.trunk"
    cfg["resnet_widths"] = [state[f"{trunk}.layer{i}.0.conv1.weight"].shape[0] for i in range(1, 5)]
    return cfg


def convert_fairseq_checkpoint(src: Union[str, Path], dst: Union[str, Path]) -> dict:
    """Official AV-HuBERT ``.pt`` -> ``.safetensors``; returns the resolved config."""
    src, dst = Path(src), Path(dst)
    ckpt = torch.load(src, map_location="cpu", pickle_module=_stub_pickle, weights_only=False)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{src}: not a fairseq checkpoint (no 'model' entry)")
    state = {k: v for k, v in ckpt["model"].items() if isinstance(v, torch.Tensor)}
    for required in ("post_extract_proj.weight", "encoder.layers.0.fc1.weight", "encoder.pos_conv.0.weight_v"):
        if required not in state:
            raise ValueError(f"{src}: not an AV-HuBERT checkpoint (missing {required})")
    cfg_all = _plain(ckpt.get("cfg")) or {}
    model_cfg = cfg_all.get("model") or {}
    config = resolve_config(model_cfg, state)
    task_cfg = cfg_all.get("task") or {}
    for key in ("image_mean", "image_std", "image_crop_size"):
        if key in task_cfg:
            config[key] = task_cfg[key]
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    metadata = {"format": FORMAT, "config": json.dumps(config), "source": src.name, "source_sha256": digest}
    state = {k: v.detach().float().contiguous() if v.is_floating_point() else v.contiguous() for k, v in state.items()}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(dst)
    logger.info(f"converted {src} -> {dst}: {len(state)} tensors, config {config}")
    return config


def load_avhubert(path: Union[str, Path]) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read a converted checkpoint: (state dict, config). Refuses pickles."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(
            f"{path}: AV-HuBERT weights are loaded from .safetensors only; convert the fairseq "
            f"checkpoint first: python -m smop.bin.convert_avhubert {path} {path.with_suffix('.safetensors')}"
        )
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path}: not written by smop.bin.convert_avhubert (format={metadata.get('format')})")
        state = {k: f.get_tensor(k) for k in f.keys()}
    return state, json.loads(metadata["config"])
