#!/usr/bin/env python3
"""The data options of a training config's modality for a data dir, as the recipe passes them.

    python -m smop.bin.data_args --config conf/train_dedr.yaml --data_dir data/train --prefix train_ --text
    --train_data_path_and_name_and_type data/train/wav.scp,speech,wav16k --train_data_path_and_name_and_type ...

``--modality_only`` prints the config's modality (audio, video or audiovisual); ``--modality``
gives the options of another modality of it (an elastic model's ASR or VSR cell). ``--cells``
prints each cell of the grid the model decodes, one a line: the suffix of its decoding dir (``-``
for the model's default cell, which decodes into the plain dir), its modality and its
avsr_inference options, e.g. ``audio_a8 audio --modality audio --audio_rate 8``; a fixed-rate model
has one line, ``- <modality>``. Reads the config with yaml only (no model, no torch), so that a
recipe can ask it per set.
"""

import argparse
import sys
from typing import List

import yaml

from smop.data.inputs import MODALITIES, data_triples, modality_of
from smop.models.elastic import DEFAULT_CELL, RATE_OPTION, decoded_cells


def decoding_cells(config: dict) -> List[str]:
    """``<dir suffix> <modality> [options]`` of every cell of the config's grid; the default cell
    (its modality at each input's first rate) first, as ``- <modality>``."""
    lines = []
    for suffix, modality, pair in decoded_cells(config):
        options = (
            ""
            if suffix == DEFAULT_CELL
            else f" --modality {modality} " + " ".join(f"--{RATE_OPTION[m]} {r}" for m, r in pair.items())
        )
        lines.append(f"{suffix} {modality}{options}")
    return lines


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="a training config (its modality key; default audiovisual)")
    p.add_argument("--data_dir", help="the Kaldi data dir")
    p.add_argument("--prefix", default="", help="train_, valid_ or empty (decoding)")
    p.add_argument("--text", action="store_true", help="also the transcripts")
    p.add_argument("--modality_only", action="store_true")
    p.add_argument("--modality", choices=sorted(MODALITIES), help="the inputs of this modality instead of the config's")
    p.add_argument("--cells", action="store_true", help="the grid cells the model decodes")
    args = p.parse_args(cmd)
    with open(args.config, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    modality = modality_of(config)
    if modality not in MODALITIES:
        sys.exit(f"{args.config}: modality {modality!r} is not one of {', '.join(MODALITIES)}")
    if args.modality_only:
        print(modality)
        return
    if args.cells:
        print("\n".join(decoding_cells(config)))
        return
    modality = args.modality or modality
    if not args.data_dir:
        p.error("--data_dir is required")
    print(
        " ".join(
            f"--{args.prefix}data_path_and_name_and_type {','.join(t)}"
            for t in data_triples(args.data_dir, modality, args.text)
        )
    )


if __name__ == "__main__":
    main()
