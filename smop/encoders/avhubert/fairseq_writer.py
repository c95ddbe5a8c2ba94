"""AV-HuBERT checkpoints written in the official fairseq layout (``large_vox_iter5.pt``).

Tests, benchmarks and the mini recipe store their AV-HuBERT models exactly like the official
release, so that smop reads them the way it reads the real one (``convert_fairseq_checkpoint``).
"""

import contextlib
import sys
import types
from pathlib import Path
from typing import Dict, Optional, Union

import torch

from smop.encoders.avhubert.checkpoint import AVHUBERT_DEFAULTS
from smop.encoders.avhubert.model import AVHubertNet

PathLike = Union[str, Path]


@contextlib.contextmanager
def _fake_fairseq_modules():
    """Importable ``fairseq.data.dictionary.Dictionary`` while pickling, so the file references it
    exactly like an official checkpoint does; removed afterwards (smop never imports fairseq)."""
    names = ["fairseq", "fairseq.data", "fairseq.data.dictionary"]
    saved = {n: sys.modules.get(n) for n in names}
    mods = {n: types.ModuleType(n) for n in names}

    class Dictionary:
        def __init__(self, symbols):
            self.symbols = list(symbols)
            self.indices = {s: i for i, s in enumerate(self.symbols)}
            self.bos_index, self.pad_index, self.eos_index, self.unk_index = 0, 1, 2, 3

    Dictionary.__module__ = "fairseq.data.dictionary"
    Dictionary.__qualname__ = "Dictionary"
    mods["fairseq.data.dictionary"].Dictionary = Dictionary
    sys.modules.update(mods)
    try:
        yield Dictionary
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def avhubert_fairseq_state(
    net: AVHubertNet, cfg: dict, num_clusters: int = 100, final_dim: int = 32
) -> Dict[str, torch.Tensor]:
    """The full fairseq ``AVHubertModel`` state dict, in fairseq's key order.

    The video path comes from ``net``; the audio projection and the pretraining heads, which an
    encoder never uses, are random.
    """
    dim = cfg["encoder_embed_dim"]
    video = net.state_dict()
    state = {
        "mask_emb": torch.rand(cfg["audio_feat_dim"]),
        "label_embs_concat": torch.randn(num_clusters + 4, final_dim),
        "feature_extractor_audio.proj.weight": torch.randn(dim, cfg["audio_feat_dim"]) * 0.02,
        "feature_extractor_audio.proj.bias": torch.zeros(dim),
    }
    for prefix in ("feature_extractor_video.", "post_extract_proj.", "encoder."):
        state.update({k: v for k, v in video.items() if k.startswith(prefix)})
    state.update({k: v for k, v in video.items() if k.startswith("layer_norm.")})
    state["final_proj.weight"] = torch.randn(final_dim, dim) * 0.02
    state["final_proj.bias"] = torch.zeros(final_dim)
    return {k: v.detach().clone().float() if v.is_floating_point() else v.clone() for k, v in state.items()}


def save_avhubert_fairseq(
    path: PathLike,
    net: Optional[AVHubertNet] = None,
    seed: int = 0,
    num_clusters: int = 100,
    final_dim: int = 32,
    extra: Optional[dict] = None,
    **cfg,
) -> Path:
    """A checkpoint laid out like ``large_vox_iter5.pt``: ``cfg`` as plain dicts (model section
    sparse, as fairseq stores it), ``model``, ``task_state`` with a pickled fairseq Dictionary."""
    path = Path(path)
    full = {**AVHUBERT_DEFAULTS, "layer_norm_first": True, **cfg}
    if net is None:
        torch.manual_seed(seed)
        net = AVHubertNet(full)
    # Like fairseq, store only the keys the pretraining YAML set (it always sets layer_norm_first).
    model_cfg = {k: full[k] for k in ("layer_norm_first", *cfg) if k != "resnet_widths"}  # widths: from shapes
    model_cfg.update(_name="av_hubert", label_rate=25, final_dim=final_dim, untie_final_proj=True)
    with _fake_fairseq_modules() as Dictionary:
        ckpt = {
            "args": None,
            "cfg": {
                "_name": None,
                "common": {"fp16": True, "user_dir": "/path/to/av_hubert/avhubert"},
                "model": model_cfg,
                "task": {
                    "_name": "av_hubert_pretraining",
                    "labels": ["km"],
                    "sample_rate": 25,
                    "stack_order_audio": 4,
                    "image_crop_size": 88,
                    "image_mean": 0.421,
                    "image_std": 0.165,
                },
            },
            "model": avhubert_fairseq_state(net, full, num_clusters, final_dim),
            "criterion": None,
            "optimizer_history": [
                {
                    "criterion_name": "AVHubertCriterion",
                    "optimizer_name": "FairseqAdam",
                    "lr_scheduler_state": {"best": None},
                    "num_updates": 0,
                }
            ],
            "task_state": {
                "dictionaries": [Dictionary(["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(num_clusters)])]
            },
            "extra_state": {"metrics": {}, "previous_training_time": 0.0},
            **(extra or {}),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(ckpt, path)
    return path
