"""Random-weight models at the real sizes (Whisper-medium.en, AV-HuBERT Large, Llama-3.2-1B),
saved the way the releases are stored, so that benchmarks build them through the same code as
the recipes (nothing is downloaded)."""

import os
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
import yaml

from smop.data.inputs import DEFAULT_MODALITY
from smop.encoders.avhubert.checkpoint import convert_fairseq_checkpoint

LRS3_CONFIG = Path(__file__).resolve().parents[1] / "egs" / "lrs3" / "avsr_smop" / "conf" / "train_dedr.yaml"

WHISPER_MEDIUM = dict(
    d_model=1024,
    encoder_layers=24,
    encoder_attention_heads=16,
    encoder_ffn_dim=4096,
    decoder_layers=1,
    decoder_attention_heads=16,
    decoder_ffn_dim=4096,
    num_mel_bins=80,
    max_source_positions=1500,
    max_target_positions=448,
    vocab_size=51864,
)
AVHUBERT_LARGE = dict(encoder_layers=24, encoder_embed_dim=1024, encoder_ffn_embed_dim=4096, encoder_attention_heads=16)
LLAMA_32_1B = dict(
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=131072,
    rope_theta=500000.0,
    tie_word_embeddings=True,
    vocab_size=128256,
    head_dim=64,
)


def build_model(
    paths: dict,
    projector: str = "linear",
    layout: Optional[str] = None,
    modality: str = DEFAULT_MODALITY,
    frozen_dtype: str = "bfloat16",
    length_aware: bool = True,
    num_experts: int = 4,
    gradient_checkpointing: bool = False,
    rates: Optional[Dict[str, Sequence[int]]] = None,
):
    """The Llama-SMoP model at the real sizes through SmopAVSRTask, as a recipe config builds it
    (E experts, k=2, expert hidden 2048, LoRA r=64 on q_proj/v_proj); ``gradient_checkpointing``
    recomputes the LLM's activations in the backward pass. ``rates``: input -> the compression
    rates of an elastic model (its compressors take them all; the recipes' default otherwise)."""
    from smop.tasks.avsr import SmopAVSRTask

    conf = (
        []
        if layout is None
        else [
            "--projector_conf",
            f"layout={layout}",
            "--projector_conf",
            f"num_experts={num_experts}",
            "--projector_conf",
            "top_k=2",
            "--projector_conf",
            "expert_hidden=2048",
        ]
    )
    args = SmopAVSRTask.get_parser().parse_args(
        [
            "--output_dir",
            "/tmp/unused",
            "--modality",
            modality,
            "--projector",
            projector,
            *conf,
            "--audio_encoder_conf",
            f"model_name_or_path={paths['whisper']}",
            "--audio_encoder_conf",
            f"frozen_dtype={frozen_dtype}",
            "--audio_encoder_conf",
            f"length_aware={length_aware}",
            "--video_encoder_conf",
            f"checkpoint={paths['avhubert']}",
            "--video_encoder_conf",
            f"frozen_dtype={frozen_dtype}",
            "--decoder_conf",
            f"model_name_or_path={paths['llm']}",
            "--decoder_conf",
            f"frozen_dtype={frozen_dtype}",
            "--decoder_conf",
            "lora_r=64",
            "--decoder_conf",
            "lora_alpha=8",
            "--decoder_conf",
            f"gradient_checkpointing={gradient_checkpointing}",
            *[a for m, r in (rates or {}).items() for a in (f"--{m}_compressor_conf", f"rates={list(r)}")],
        ]
    )
    return SmopAVSRTask.build_model(args)


def decoding_model(root: Path, paths: Optional[dict], device, dtype: Optional[str], *args, **kwargs):
    """(model, dtype): ``build_model(*args, **kwargs)`` in eval mode on ``device`` (a bench.device.Device),
    its frozen parts in ``dtype`` (float32 on a CPU, bfloat16 on a GPU by default); from the real-size
    models under ``root``, or from ``paths`` (the tests' tiny ones)."""
    dtype = dtype or device.frozen_dtype("float32")
    torch.manual_seed(0)
    model = build_model(paths or real_size_models(root), *args, frozen_dtype=dtype, **kwargs).eval()
    return model.to(device.name), dtype


def build_projector(model, projector: str, layout: Optional[str] = None, num_experts: int = 4):
    """A projector of another kind for ``model`` (same input and output sizes), to swap in."""
    from smop.tasks.avsr import projector_choices

    sizes = {m: getattr(model, f"{m}_compressor").output_size() for m in model.modalities}
    conf = {} if layout is None else dict(layout=layout, num_experts=num_experts, top_k=2, expert_hidden=2048)
    return projector_choices.get_class(projector)(input_sizes=sizes, output_size=model.decoder.embed_size(), **conf)


def lrs3_training_batch(seconds: float = 5.0) -> dict:
    """One training step of the LRS3 recipe (egs/lrs3/avsr_smop/conf/train_dedr.yaml) in
    utterances of ``seconds``: batch_bins counts 25 Hz video frames (global across GPUs, and the
    recipe trains on one GPU by default); with its use_amp."""
    cfg = yaml.safe_load(LRS3_CONFIG.read_text())
    return {"utterances": int(cfg["batch_bins"] // round(seconds * 25)), "use_amp": bool(cfg.get("use_amp", False))}


def real_size_models(root: Path, dtype=torch.bfloat16) -> dict:
    """Paths of the three models under ``root`` (written once, then reused)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from smop.encoders.avhubert.fairseq_writer import save_avhubert_fairseq
    from smop.utils.hf_release import save_whisper

    root = Path(root)
    paths = {
        "whisper": root / "whisper-medium",
        "llm": root / "llama-3.2-1b",
        "avhubert": root / "avhubert" / "large_vox_iter5.safetensors",
    }
    if not (paths["whisper"] / "config.json").exists():
        torch.manual_seed(0)
        save_whisper(paths["whisper"], model=WhisperForConditionalGeneration(WhisperConfig(**WHISPER_MEDIUM)).to(dtype))
    if not paths["avhubert"].exists():
        pt = save_avhubert_fairseq(
            root / "avhubert" / "large_vox_iter5.pt", num_clusters=2000, final_dim=256, **AVHUBERT_LARGE
        )
        convert_fairseq_checkpoint(pt, paths["avhubert"])
        os.unlink(pt)
    real_size_llm(paths["llm"], dtype)
    return {k: str(v) for k, v in paths.items()}


def real_size_llm(path: Path, dtype=torch.bfloat16) -> str:
    """Llama-3.2-1B's architecture with random weights and a small tokenizer, saved under ``path``
    (written once, then reused)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from smop.utils.hf_release import train_spm_tokenizer

    path = Path(path)
    if not (path / "config.json").exists():
        tok = train_spm_tokenizer(
            ["transcribe speech and video to text"] * 50, path.parent / "tokenizer", vocab_size=300
        )
        t = AutoTokenizer.from_pretrained(str(tok))
        with torch.device("cpu"):
            torch.manual_seed(0)
            model = LlamaForCausalLM(
                LlamaConfig(bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id, **LLAMA_32_1B)
            )
        model.to(dtype).save_pretrained(path)
        t.save_pretrained(path)
    return str(path)
