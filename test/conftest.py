"""Shared fixtures: tiny Whisper, AV-HuBERT and Llama models saved the way the real ones are,
and a tiny Kaldi-style data directory (the helpers they are made with are in tiny_experiment.py)."""

import os

import pytest
import torch

from tiny_experiment import (
    SENTENCES,
    TINY_AVHUBERT,
    TINY_WHISPER,
    pretrained_tiny_llama,
    write_datadir,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory):
    """Paths of the tiny pretrained models: whisper dir, avhubert .safetensors, llm dir."""
    from smop.encoders.avhubert.checkpoint import convert_fairseq_checkpoint
    from smop.encoders.avhubert.fairseq_writer import save_avhubert_fairseq
    from smop.utils.hf_release import save_llama, save_whisper, train_spm_tokenizer

    root = tmp_path_factory.mktemp("pretrained")
    save_whisper(root / "whisper", seed=1, **TINY_WHISPER)
    pt = save_avhubert_fairseq(root / "avhubert" / "tiny_vox_iter5.pt", seed=2, **TINY_AVHUBERT)
    st = root / "avhubert" / "tiny_vox_iter5.safetensors"
    convert_fairseq_checkpoint(pt, st)
    tok = train_spm_tokenizer(SENTENCES * 10, root / "tokenizer", vocab_size=300)
    save_llama(root / "llm", tok, model=pretrained_tiny_llama(tok))
    return {"whisper": str(root / "whisper"), "avhubert_pt": str(pt), "avhubert": str(st), "llm": str(root / "llm")}


@pytest.fixture(scope="session")
def datadir(tmp_path_factory):
    return write_datadir(tmp_path_factory.mktemp("data") / "train")
