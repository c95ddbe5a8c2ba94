#!/usr/bin/env python3
"""Batched decoding of a trained Llama-SMoP model (ESPnet-style command line).

Writes ``<output_dir>/1best_recog/{text,score}`` sorted by utterance id, the per-expert routing
counts ``<output_dir>/expert_usage.json`` and the resolved settings ``<output_dir>/decode_config.yaml``.
"""
import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile
import torch
import yaml
from espnet2.torch_utils.device_funcs import to_device
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
from espnet2.train.dataset import ESPnetDataset
from espnet2.utils import config_argparse
from espnet2.utils.types import str2bool, str2triple_str, str_or_none
from tqdm import tqdm

from smop.data.loaders import read_scp
from smop.tasks.avsr import SmopAVSRTask
from smop.utils.io import atomic_write
from smop.utils.versions import versions

logger = logging.getLogger(__name__)


def utterance_length(path: str, data_type: str) -> int:
    """Cheap length of one input, for length-sorted batching."""
    if data_type == "mouth_npy":
        return int(np.load(path, mmap_mode="r").shape[0])
    return int(soundfile.info(path).frames // 640)  # 16 kHz samples -> 25 Hz frames


def decoding_keys(data: Sequence[Tuple[str, str, str]], key_file: Optional[str], sort_by_length: bool) -> List[str]:
    """The utterances to decode (``key_file`` or all of the first input), longest first when
    ``sort_by_length``, so batches hold similar lengths and the largest comes first. Every input
    must hold every one of them."""
    path, _, data_type = data[0]
    table = read_scp(path)
    if key_file:
        keys = [line.split(maxsplit=1)[0] for line in open(key_file, encoding="utf-8") if line.strip()]
    else:
        keys = list(table)
    for other, _, _ in data:
        have = table if other == path else read_scp(other)
        missing = [k for k in keys if k not in have]
        if missing:
            wanted = key_file or path
            raise ValueError(f"{len(missing)} utterances of {wanted} are not in {other}, e.g. {missing[:3]}")
    if sort_by_length:
        lengths = {k: utterance_length(table[k], data_type) for k in keys}
        keys.sort(key=lambda k: (-lengths[k], k))
    return keys


def evaluation_loader(data: Sequence[Tuple[str, str, str]], train_args, keys: Sequence[str], batch_size: int,
                      num_workers: int = 0, dtype: str = "float32") -> torch.utils.data.DataLoader:
    """(keys, batch) in batches of ``keys`` in the given order, preprocessed as in validation.

    A map-style ESPnet dataset read in our own batches: ESPnet's streaming iterator reads the scp
    files in order (no length sorting) and, for types it cannot stream, runs the preprocessor
    twice (the video would be normalised twice).
    """
    dataset = ESPnetDataset(data, preprocess=SmopAVSRTask.build_preprocess_fn(train_args, False), float_dtype=dtype)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=[list(keys[i : i + batch_size]) for i in range(0, len(keys), batch_size)],
        collate_fn=SmopAVSRTask.build_collate_fn(train_args, False), num_workers=num_workers,
    )


def inference(
    output_dir: str,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    train_config: Optional[str],
    model_file: Optional[str],
    key_file: Optional[str] = None,
    batch_size: int = 1,
    beam_size: int = 1,
    max_new_tokens_per_second: float = 10.0,
    max_new_tokens_min: int = 10,
    ngpu: int = 0,
    seed: int = 0,
    num_workers: int = 1,
    sort_by_length: bool = True,
    dtype: str = "float32",
) -> Dict[str, str]:
    if ngpu > 1:
        raise NotImplementedError("decode with --ngpu 0 or 1; split the data over jobs for more")
    device = "cuda" if ngpu > 0 else "cpu"
    set_all_random_seed(seed)
    model, train_args = SmopAVSRTask.build_model_from_file(train_config, model_file, device)
    model.to(dtype=getattr(torch, dtype)).eval()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = model.decoder.generation_settings(beam_size)
    settings.update(max_new_tokens=f"{max_new_tokens_min} + ceil({max_new_tokens_per_second} * seconds) per utterance")
    with atomic_write(out / "generation_config.yaml") as f:
        yaml.safe_dump({"generation": settings, "train_config": train_config, "model_file": model_file,
                        "model": {k: v for k, v in vars(train_args).items() if k.endswith(("_conf", "coder", "projector", "modality"))}},
                       f, sort_keys=False)

    keys = decoding_keys(data_path_and_name_and_type, key_file, sort_by_length)
    loader = evaluation_loader(data_path_and_name_and_type, train_args, keys, batch_size, num_workers, dtype)
    texts: Dict[str, str] = {}
    scores: Dict[str, float] = {}
    usage: Dict[str, Dict[str, List[float]]] = {}
    for batch_keys, batch in tqdm(loader, total=len(loader), desc="decoding", unit="batch", file=sys.stderr):
        batch = to_device(batch, device)
        inputs = {k: v for k, v in batch.items() if not k.startswith("text")}
        hyps, proj = model.recognize(
            **inputs,
            beam_size=beam_size,
            max_new_tokens_per_second=max_new_tokens_per_second,
            max_new_tokens_min=max_new_tokens_min,
            utt_id=list(batch_keys),
        )
        for key, (text, score) in zip(batch_keys, hyps):
            texts[key] = text
            scores[key] = score
        accumulate_usage(usage, proj.stats)

    with atomic_write(out / "1best_recog" / "text") as f:
        f.writelines(f"{k} {texts[k]}\n".replace(" \n", "\n") for k in sorted(texts))
    with atomic_write(out / "1best_recog" / "score") as f:
        f.writelines(f"{k} {scores[k]:.4f}\n" for k in sorted(scores))
    if usage:
        with atomic_write(out / "expert_usage.json") as f:
            json.dump(usage, f, indent=2)
    logger.info(f"decoded {len(texts)} utterances -> {out / '1best_recog' / 'text'}")
    return texts


def accumulate_usage(usage: Dict[str, Dict[str, List[float]]], stats: Dict[str, torch.Tensor]) -> None:
    """Sum token counts per modality, choice rank and expert over the batches."""
    for key, value in stats.items():
        parts = key.split("_")
        if len(parts) == 3 and parts[1].startswith("top") and parts[2].startswith("e"):
            m, rank, e = parts[0], parts[1], int(parts[2][1:])
            n = float(stats[f"{m}_tokens"])
            counts = usage.setdefault(m, {}).setdefault(rank, [])
            counts.extend([0.0] * (e + 1 - len(counts)))
            counts[e] += float(value) * n


def get_parser() -> config_argparse.ArgumentParser:
    parser = config_argparse.ArgumentParser(
        description="Llama-SMoP decoding", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--log_level", default="INFO", choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: one GPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=("float16", "bfloat16", "float32"))
    parser.add_argument("--num_workers", type=int, default=1)
    group = parser.add_argument_group("Input data")
    group.add_argument("--data_path_and_name_and_type", type=str2triple_str, required=True, action="append")
    group.add_argument("--key_file", type=str_or_none)
    group.add_argument("--sort_by_length", type=str2bool, default=True)
    group = parser.add_argument_group("The model")
    group.add_argument("--train_config", type=str, help="config.yaml written by training")
    group.add_argument("--model_file", type=str, help="a trained *.pth (trainable weights)")
    group = parser.add_argument_group("Search")
    group.add_argument("--batch_size", type=int, default=1)
    group.add_argument("--beam_size", type=int, default=1, help="1: greedy")
    group.add_argument("--max_new_tokens_per_second", type=float, default=10.0)
    group.add_argument("--max_new_tokens_min", type=int, default=10)
    return parser


def main(cmd=None):
    parser = get_parser()
    args = parser.parse_args(cmd)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    kwargs = vars(args).copy()
    kwargs.pop("config", None)
    kwargs.pop("log_level")
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    with atomic_write(Path(args.output_dir) / "decode_config.yaml") as f:
        yaml.safe_dump({"args": {k: (list(map(list, v)) if k == "data_path_and_name_and_type" else v) for k, v in kwargs.items()},
                        "versions": versions()}, f, sort_keys=False)
    inference(**kwargs)


if __name__ == "__main__":
    main()
