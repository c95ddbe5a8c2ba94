"""Hugging Face model directories written as the released models are stored (``save_pretrained``).

Tests, benchmarks and the mini recipe build small or random Whisper and Llama models and store them
exactly like the real releases, so that smop loads them through the same code paths.
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Union

import torch

from smop.utils.pretrained import NO_REMOTE_CODE

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
    WhisperFeatureExtractor(feature_size=cfg.num_mel_bins, chunk_length=cfg.max_source_positions // 50).save_pretrained(
        out_dir
    )
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
        tokenizer = LlamaTokenizer.from_pretrained(str(src), **NO_REMOTE_CODE)
        tokenizer.save_pretrained(out_dir)
    return out_dir


def save_llama(out_dir: PathLike, tokenizer_dir: PathLike, model=None, seed: int = 0, **config) -> Path:
    """A ``LlamaForCausalLM`` directory with the tokenizer of ``tokenizer_dir``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), **NO_REMOTE_CODE)
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
