#!/usr/bin/env python3
"""Batched decoding of a trained Llama-SMoP model (ESPnet-style command line).

Writes ``<output_dir>/1best_recog/{text,score}`` sorted by utterance id, the per-expert routing
counts ``<output_dir>/expert_usage.json``, what decoded the set ``<output_dir>/decode_config.yaml``
(smop.experiment.DecodeRecord) and the search settings ``<output_dir>/generation_config.yaml``.

One process can decode several test sets with the model loaded once (start-up, mostly imports,
is much of a small set's time on a CPU): repeat the set's options, each set naming every input
once and in the same order, e.g. for two sets

    --data_path_and_name_and_type data/test/wav.scp,speech,wav16k --key_file A --output_dir X \
    --data_path_and_name_and_type data/test_snr0/wav.scp,speech,wav16k --key_file B --output_dir Y
"""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
from espnet2.train.dataset import ESPnetDataset
from espnet2.utils import config_argparse
from espnet2.utils.types import int_or_none, str2bool, str2triple_str, str_or_none
from tqdm import tqdm

from smop.data.datadir import check_inputs_agree, read_table
from smop.data.inputs import INPUTS, SAMPLES_PER_FRAME
from smop.data.loaders import audio_samples, read_scp
from smop.decoders import quantization as quant
from smop.experiment import EXPERT_USAGE, GENERATION, HYPOTHESES, DecodeRecord, usage_counts
from smop.inference.settings import DecodeSettings
from smop.inference.speech2text import Speech2Text
from smop.models.elastic import GridError
from smop.tasks.avsr import SmopAVSRTask
from smop.utils.frozen import DTYPES
from smop.utils.io import atomic_write
from smop.utils.log import setup_logging
from smop.utils.versions import versions

logger = logging.getLogger(__name__)
DEFAULTS = DecodeSettings()


def utterance_length(path: str, data_type: str) -> int:
    """Cheap length of one input, for length-sorted batching."""
    if data_type == INPUTS["video"].data_type:
        return int(np.load(path, mmap_mode="r").shape[0])
    return int(audio_samples(path) // SAMPLES_PER_FRAME)  # samples -> video frames


def decoding_keys(data: Sequence[Tuple[str, str, str]], key_file: Optional[str], sort_by_length: bool) -> List[str]:
    """The utterances to decode (``key_file`` or all of the first input), longest first when
    ``sort_by_length``, so batches hold similar lengths and the largest comes first. Every input
    must hold every one of them."""
    path, _, data_type = data[0]
    table = read_scp(path)
    if key_file:
        keys = [key for key, _ in read_table(key_file, unique=True, value_required=False)]
    else:
        keys = list(table)
    check_inputs_agree(data, key_file or path, keys)
    if sort_by_length:
        lengths = {k: utterance_length(table[k], data_type) for k in keys}
        keys.sort(key=lambda k: (-lengths[k], k))
    return keys


def evaluation_loader(
    data: Sequence[Tuple[str, str, str]], train_args, keys: Sequence[str], batch_size: int, num_workers: int = 0
) -> torch.utils.data.DataLoader:
    """(keys, batch) in batches of ``keys`` in the given order, preprocessed as in validation
    (floats in float32: numpy, where ESPnet's dataset casts, has no bfloat16).

    A map-style ESPnet dataset read in our own batches: ESPnet's streaming iterator reads the scp
    files in order (no length sorting) and, for types it cannot stream, runs the preprocessor
    twice (the video would be normalised twice).
    """
    dataset = ESPnetDataset(data, preprocess=SmopAVSRTask.build_preprocess_fn(train_args, False))
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=[list(keys[i : i + batch_size]) for i in range(0, len(keys), batch_size)],
        collate_fn=SmopAVSRTask.build_collate_fn(train_args, False),
        num_workers=num_workers,
    )


class DecodeSet(NamedTuple):
    """One test set of a decoding run: its inputs, the utterances to decode, where results go."""

    output_dir: str
    data: List[Tuple[str, str, str]]
    key_file: Optional[str] = None


def decode_sets(
    data: Sequence[Tuple[str, str, str]], output_dirs: Sequence[str], key_files: Optional[Sequence[str]] = None
) -> List[DecodeSet]:
    """Group the repeated command-line options into test sets: the inputs in order, one
    ``--output_dir`` (and, if any, one ``--key_file``) per set, each set naming the same inputs."""
    n = len(output_dirs)
    if n == 0:
        raise ValueError("--output_dir is required")
    if len(data) % n:
        raise ValueError(
            f"{len(data)} --data_path_and_name_and_type for {n} --output_dir: each set needs the same inputs"
        )
    if key_files and len(key_files) != n:
        raise ValueError(f"{len(key_files)} --key_file for {n} --output_dir: give one per set or none")
    m = len(data) // n
    groups = [list(data[i * m : (i + 1) * m]) for i in range(n)]
    names = [name for _, name, _ in groups[0]]
    for out, group in zip(output_dirs, groups):
        if [name for _, name, _ in group] != names or len(set(names)) != m:
            raise ValueError(
                f"the inputs for --output_dir {out} are {[t[1] for t in group]}; every set needs each of "
                f"{sorted(set(names))} once, in the same order"
            )
    return [
        DecodeSet(out, group, key_files[i] if key_files else None)
        for i, (out, group) in enumerate(zip(output_dirs, groups))
    ]


def inference(
    sets: Sequence[DecodeSet],
    train_config: Optional[str],
    model_file: Optional[str],
    ngpu: int = 0,
    seed: int = 0,
    num_workers: int = 1,
    sort_by_length: bool = True,
    quantization=None,
    **settings,
) -> List[Dict[str, str]]:
    """Decode each set with the model loaded once; the hypotheses of each set, by utterance id.
    ``settings`` are those of :class:`DecodeSettings` (batch_size, beam_size, ...);
    ``quantization`` overrides the LLM's (Speech2Text.from_pretrained)."""
    if ngpu > 1:
        raise NotImplementedError("decode with --ngpu 0 or 1; split the data over jobs for more")
    # As ESPnet's inference(): one Speech2Text decodes every batch of the loader.
    speech2text = Speech2Text.from_files(
        train_config, model_file, "cuda" if ngpu > 0 else "cpu", quantization, **settings
    )
    train_args = speech2text.train_args
    generation = generation_record(speech2text.model, speech2text.settings)
    generation.update(
        train_config=train_config,
        model_file=model_file,
        model={k: v for k, v in vars(train_args).items() if k.endswith(("_conf", "coder", "projector", "modality"))},
    )
    results = []
    for one in sets:
        out = Path(one.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / GENERATION) as f:
            yaml.safe_dump(generation, f, sort_keys=False)
        results.append(decode_set(speech2text, one, seed, sort_by_length, num_workers))
    return results


def decode_set(
    speech2text: Speech2Text, one: DecodeSet, seed: int = 0, sort_by_length: bool = True, num_workers: int = 1
) -> Dict[str, str]:
    """Decode one set with ``speech2text``'s settings, its outputs written under its output_dir
    (as :func:`decode`); its hypotheses by utterance id."""
    # Seeded per set: a set's hypotheses do not depend on which sets were decoded before it.
    set_all_random_seed(seed)
    keys = decoding_keys(one.data, one.key_file, sort_by_length)
    loader = evaluation_loader(one.data, speech2text.train_args, keys, speech2text.settings.batch_size, num_workers)
    return decode(speech2text, loader, Path(one.output_dir))


def generation_record(model, settings: DecodeSettings) -> dict:
    """What decoding runs with: the transformers generation settings and the token budget."""
    generation = model.decoder.generation_settings(settings.beam_size, settings.early_stopping)
    generation.update(
        max_new_tokens=f"{settings.max_new_tokens_min} + ceil({settings.max_new_tokens_per_second} "
        "* seconds) per utterance"
    )
    return {"generation": generation, "settings": settings.to_dict()}


def decode(speech2text: Speech2Text, loader, out: Path) -> Dict[str, str]:
    """Decode one set's batches and write its 1-best text, scores and expert usage under ``out``."""
    texts: Dict[str, str] = {}
    scores: Dict[str, float] = {}
    usage: Dict[str, torch.Tensor] = {}
    for batch_keys, batch in tqdm(loader, total=len(loader), desc=f"decoding {out}", unit="batch", file=sys.stderr):
        hyps, proj = speech2text.recognize_batch(batch_keys, batch)
        for key, (text, score) in zip(batch_keys, hyps):
            texts[key] = text
            scores[key] = score
        for m, counts in proj.usage.items():  # (top_k, E) token counts of this batch
            usage[m] = usage[m] + counts.cpu() if m in usage else counts.cpu()

    with atomic_write(out / HYPOTHESES / "text") as f:
        f.writelines(f"{k} {texts[k]}\n".replace(" \n", "\n") for k in sorted(texts))
    with atomic_write(out / HYPOTHESES / "score") as f:
        f.writelines(f"{k} {scores[k]:.4f}\n" for k in sorted(scores))
    if usage:
        with atomic_write(out / EXPERT_USAGE) as f:  # modality -> top<r> -> tokens per expert
            json.dump(usage_counts(usage), f, indent=2)
    logger.info(f"decoded {len(texts)} utterances -> {out / HYPOTHESES / 'text'}")
    return texts


def add_cell_arguments(group) -> None:
    """--modality, --audio_rate, --video_rate: which modality and compression rates of an elastic
    model to decode with (a model refuses those it was not trained for, listing its own)."""
    group.add_argument(
        "--modality", type=str_or_none, default=None, help="audio (ASR), video (VSR) or audiovisual (AVSR)"
    )
    group.add_argument("--audio_rate", type=int_or_none, default=None, help="audio frames per LLM token")
    group.add_argument("--video_rate", type=int_or_none, default=None, help="video frames per LLM token")


def get_parser() -> config_argparse.ArgumentParser:
    parser = config_argparse.ArgumentParser(
        description="Llama-SMoP decoding", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--log_level", default="INFO", choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    parser.add_argument("--output_dir", required=True, action="append", help="one per test set")
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: one GPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default=DEFAULTS.dtype, choices=DTYPES)
    parser.add_argument("--num_workers", type=int, default=1)
    group = parser.add_argument_group("Input data")
    group.add_argument("--data_path_and_name_and_type", type=str2triple_str, required=True, action="append")
    group.add_argument("--key_file", type=str_or_none, action="append", help="none, or one per test set")
    group.add_argument("--sort_by_length", type=str2bool, default=True)
    group = parser.add_argument_group("The model")
    group.add_argument("--train_config", type=str, help="config.yaml written by training")
    group.add_argument("--model_file", type=str, help="a trained *.pth (trainable weights)")
    group.add_argument(
        "--quantization",
        type=str_or_none,
        help="decode with the LLM quantized otherwise than in training: a decoder_conf.quantization mapping "
        "('{bits: 4}', '{bits: 8}') or none (unquantized); default: as trained",
    )
    group = parser.add_argument_group("Grid cell (an elastic model's; default: its modality, each input's first rate)")
    add_cell_arguments(group)
    group = parser.add_argument_group("Search")
    group.add_argument("--batch_size", type=int, default=DEFAULTS.batch_size)
    group.add_argument("--beam_size", type=int, default=DEFAULTS.beam_size, help="1: greedy")
    group.add_argument("--max_new_tokens_per_second", type=float, default=DEFAULTS.max_new_tokens_per_second)
    group.add_argument("--max_new_tokens_min", type=int, default=DEFAULTS.max_new_tokens_min)
    group.add_argument(
        "--early_stopping",
        type=str2bool,
        default=DEFAULTS.early_stopping,
        help="beam search stops once beam_size hypotheses have ended (transformers' early_stopping)",
    )
    return parser


def main(cmd=None):
    parser = get_parser()
    args = parser.parse_args(cmd)
    setup_logging(args.log_level)
    kwargs = vars(args).copy()
    kwargs.pop("config", None)
    kwargs.pop("log_level")
    try:
        sets = decode_sets(kwargs.pop("data_path_and_name_and_type"), kwargs.pop("output_dir"), kwargs.pop("key_file"))
        if isinstance(args.quantization, str):  # a decode config's YAML gives the mapping itself
            args.quantization = kwargs["quantization"] = quant.cli_value(args.quantization)
    except ValueError as e:
        parser.error(str(e))
    settings = DecodeSettings.from_dict(kwargs, "the decoding options")
    for one in sets:  # each set's record: as if it had been decoded alone
        DecodeRecord(
            output_dir=one.output_dir,
            data=one.data,
            key_file=one.key_file,
            settings=settings,
            train_config=args.train_config,
            model_file=args.model_file,
            ngpu=args.ngpu,
            seed=args.seed,
            num_workers=args.num_workers,
            sort_by_length=args.sort_by_length,
            quantization=args.quantization,
            versions=versions(),
        ).write()
    try:
        inference(sets, **kwargs)
    except GridError as e:  # a modality or rate the model was not trained for
        parser.error(str(e))


if __name__ == "__main__":
    main()
