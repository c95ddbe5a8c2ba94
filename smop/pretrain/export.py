"""Write models in the formats of the real pretrained releases.

Tests and the mini recipe build small Whisper, AV-HuBERT and Llama models (random, or trained on
the mini corpus) and store them exactly the way the released models are stored: Hugging Face
``save_pretrained`` directories for Whisper and the LLM, a fairseq checkpoint pickle for AV-HuBERT.
smop then loads them through the same code paths as the real ones.
"""
import contextlib
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Dict, Iterable, Optional, Union

import torch

from smop.encoders.avhubert.checkpoint import AVHUBERT_DEFAULTS
from smop.encoders.avhubert.model import AVHubertNet

PathLike = Union[str, Path]


def save_whisper(out_dir: PathLike, model=None, seed: int = 0, **config) -> Path:
    """A ``WhisperForConditionalGeneration`` directory with its feature extractor config."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    out_dir = Path(out_dir)
    if model is None:
        torch.manual_seed(seed)
        model = WhisperForConditionalGeneration(WhisperConfig(**config))
    model.save_pretrained(out_dir)
    cfg = model.config
    # The extractor's window matches the encoder's: max_source_positions frames at 50 Hz.
    WhisperFeatureExtractor(
        feature_size=cfg.num_mel_bins, chunk_length=cfg.max_source_positions // 50
    ).save_pretrained(out_dir)
    return out_dir


def train_spm_tokenizer(texts: Iterable[str], out_dir: PathLike, vocab_size: int = 320) -> Path:
    """A sentencepiece BPE model (byte fallback) converted to a Llama tokenizer directory."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "tokenizer")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(list(texts)),
            model_prefix=prefix,
            vocab_size=vocab_size,
            model_type="bpe",
            byte_fallback=True,
            character_coverage=1.0,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            minloglevel=2,
            num_threads=1,
        )
        src = Path(tmp) / "src"
        src.mkdir()
        shutil.copy(prefix + ".model", src / "tokenizer.model")
        tokenizer = LlamaTokenizer.from_pretrained(str(src))
        tokenizer.save_pretrained(out_dir)
    return out_dir


def save_llama(out_dir: PathLike, tokenizer_dir: PathLike, model=None, seed: int = 0, **config) -> Path:
    """A ``LlamaForCausalLM`` directory with the tokenizer of ``tokenizer_dir``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    if model is None:
        torch.manual_seed(seed)
        config = dict(config)
        config.setdefault("vocab_size", len(tokenizer))
        config.setdefault("bos_token_id", tokenizer.bos_token_id)
        config.setdefault("eos_token_id", tokenizer.eos_token_id)
        model = LlamaForCausalLM(LlamaConfig(**config))
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


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


def avhubert_fairseq_state(net: AVHubertNet, cfg: dict, num_clusters: int = 100, final_dim: int = 32) -> Dict[str, torch.Tensor]:
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
    path: PathLike, net: Optional[AVHubertNet] = None, seed: int = 0, num_clusters: int = 100,
    final_dim: int = 32, extra: Optional[dict] = None, **cfg,
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
                "task": {"_name": "av_hubert_pretraining", "labels": ["km"], "sample_rate": 25,
                         "stack_order_audio": 4, "image_crop_size": 88, "image_mean": 0.421, "image_std": 0.165},
            },
            "model": avhubert_fairseq_state(net, full, num_clusters, final_dim),
            "criterion": None,
            "optimizer_history": [{"criterion_name": "AVHubertCriterion", "optimizer_name": "FairseqAdam",
                                   "lr_scheduler_state": {"best": None}, "num_updates": 0}],
            "task_state": {"dictionaries": [Dictionary(["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(num_clusters)])]},
            "extra_state": {"metrics": {}, "previous_training_time": 0.0},
            **(extra or {}),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(ckpt, path)
    return path
