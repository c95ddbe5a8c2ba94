"""A tiny experiment's pieces for the tests: small Whisper, AV-HuBERT and Llama configurations, Kaldi-style
data dirs, training configs over them, and the loss of a model over a data dir.

A plain module (``from tiny_experiment import write_train_config``); conftest.py builds its session
fixtures from it.
"""

import shutil
from pathlib import Path

import numpy as np
import soundfile
import torch

from smop.data.inputs import data_triples

SENTENCES = [
    "bin blue at a one again",
    "place green by b two now",
    "set red in c three please",
    "lay white with d four soon",
    "bin green at e five now",
    "place red by f six again",
    "set white in g seven soon",
    "lay blue with h eight please",
    "transcribe speech and video to text",
]

TINY_WHISPER = dict(
    d_model=32,
    encoder_layers=2,
    encoder_attention_heads=2,
    encoder_ffn_dim=64,
    decoder_layers=1,
    decoder_attention_heads=2,
    decoder_ffn_dim=64,
    num_mel_bins=80,
    max_source_positions=150,
    max_target_positions=32,
    vocab_size=100,
    decoder_start_token_id=1,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)
TINY_AVHUBERT = dict(
    encoder_layers=2,
    encoder_embed_dim=32,
    encoder_ffn_embed_dim=64,
    encoder_attention_heads=4,
    conv_pos=8,
    conv_pos_groups=4,
    resnet_widths=[8, 8, 16, 16],
)
TINY_LLAMA = dict(
    hidden_size=48,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
)


def pretrained_tiny_llama(tokenizer_dir, **sizes):
    """A tiny Llama that has learnt the sentences, as a real pretrained LLM knows its language;
    ``sizes`` change TINY_LLAMA's."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from smop.mini.lm import pretrain_causal_lm

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(3)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **{**TINY_LLAMA, **sizes}
        )
    )
    pretrain_causal_lm(model, tok, SENTENCES, steps=60, batch_size=8, lr=1e-2)
    return model


def write_datadir(root: Path, n: int = 6, seed: int = 0, sentences=SENTENCES[:8], frames: int = None) -> Path:
    """A Kaldi-style data dir with wav.scp (16 kHz), video.scp (uint8 96x96 npy), text and shapes;
    utterances of 20-40 video frames, or all of ``frames``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "media").mkdir(exist_ok=True)
    wav, video, text, shape, spk = [], [], [], [], []
    for i in range(n):
        utt = f"spk{i % 2}-utt{i:03d}"
        k = i % len(sentences)
        drawn = int(rng.integers(20, 40))  # 0.8 - 1.6 s
        n_frames = drawn if frames is None else frames
        # The sentence is recoverable from either stream: a tone in the audio, a brightness in the video.
        t = np.arange(n_frames * 640) / 16000
        wave = (0.3 * np.sin(2 * np.pi * (300 + 150 * k) * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        soundfile.write(root / "media" / f"{utt}.wav", wave, 16000)
        video_frames = np.clip(rng.normal(40 + 25 * k, 10, (n_frames, 96, 96)), 0, 255).astype(np.uint8)
        np.save(root / "media" / f"{utt}.npy", video_frames)
        wav.append(f"{utt} {root / 'media' / (utt + '.wav')}\n")
        video.append(f"{utt} {root / 'media' / (utt + '.npy')}\n")
        text.append(f"{utt} {sentences[k]}\n")
        shape.append(f"{utt} {n_frames}\n")
        spk.append(f"{utt} spk{i % 2}\n")
    for name, lines in (
        ("wav.scp", wav),
        ("video.scp", video),
        ("text", text),
        ("frames_shape", shape),
        ("utt2num_frames", shape),
        ("utt2spk", spk),
    ):
        (root / name).write_text("".join(sorted(lines)))
    utts = sorted(line.split()[0] for line in spk)
    (root / "spk2utt").write_text(
        "".join(f"spk{j} {' '.join(u for u in utts if u.startswith(f'spk{j}-'))}\n" for j in (0, 1))
    )
    return root


def write_train_config(
    path: Path, pretrained: dict, datadir: Path, valid_dir: Path = None, replace=(), **overrides
) -> Path:
    """A complete training YAML over the tiny models and data dir (what a recipe's conf/ holds).

    Dict overrides are merged into the defaults, except for the keys named in ``replace``."""
    import yaml

    valid_dir = valid_dir or datadir
    cfg = {
        "modality": "audiovisual",
        "audio_encoder": "whisper",
        "audio_encoder_conf": {"model_name_or_path": pretrained["whisper"]},
        "video_encoder": "avhubert",
        "video_encoder_conf": {"checkpoint": pretrained["avhubert"]},
        "projector": "smop",
        "projector_conf": {"layout": "dedr", "num_experts": 4, "top_k": 2, "expert_hidden": 32},
        "decoder": "hf_causal_lm",
        "decoder_conf": {"model_name_or_path": pretrained["llm"], "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0},
        "preprocessor_conf": {"audio_mask_max": 0.0, "video_mask_max": 0.0},
        "optim": "adamw",
        "optim_conf": {"lr": 0.01, "betas": [0.9, 0.98], "weight_decay": 0.1},
        "train_data_path_and_name_and_type": [list(t) for t in data_triples(datadir, "audiovisual", text=True)],
        "valid_data_path_and_name_and_type": [list(t) for t in data_triples(valid_dir, "audiovisual", text=True)],
        "train_shape_file": [str(datadir / "frames_shape")],
        "valid_shape_file": [str(valid_dir / "frames_shape")],
        "batch_type": "sorted",
        "batch_size": 3,
        "max_epoch": 2,
        "num_iters_per_epoch": 10,
        "num_workers": 0,
        "seed": 0,
        "unused_parameters": True,
        "best_model_criterion": [["valid", "loss", "min"]],
        "keep_nbest_models": 1,
        "use_matplotlib": False,
        "log_interval": 5,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict) and key not in replace:
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def dataset_loss(model, train_args, datadir: Path) -> float:
    """Mean loss of ``model`` over a data dir, without augmentation."""
    from smop.bin.avsr_inference import evaluation_loader
    from smop.data.loaders import read_scp

    data = data_triples(datadir, "audiovisual", text=True)
    loader = evaluation_loader(data, train_args, sorted(read_scp(str(datadir / "text"))), batch_size=3)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for keys, batch in loader:
            loss, _, weight = model(**batch, utt_id=list(keys))
            total += float(loss) * float(weight)
            count += float(weight)
    return total / count


def add_to_hub_cache(cache: Path, repo_id: str, folder: Path, revision: str = "0" * 39 + "1") -> Path:
    """``folder`` as the Hugging Face cache holds a downloaded repository (refs/main -> snapshot)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return repo / "snapshots" / revision
