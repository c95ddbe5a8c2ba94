#!/usr/bin/env python3
"""The data options of a training config's modality for a data dir, as the recipe passes them.

    python -m smop.bin.data_args --config conf/train_dedr.yaml --data_dir data/train --prefix train_ --text
    --train_data_path_and_name_and_type data/train/wav.scp,speech,wav16k --train_data_path_and_name_and_type ...

``--modality_only`` prints the config's modality (audio, video or audiovisual). Reads the config
with yaml only (no model, no torch), so that a recipe can ask it per set.
"""

import argparse
import sys

import yaml

from smop.data.inputs import MODALITIES, data_triples, modality_of


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="a training config (its modality key; default audiovisual)")
    p.add_argument("--data_dir", help="the Kaldi data dir")
    p.add_argument("--prefix", default="", help="train_, valid_ or empty (decoding)")
    p.add_argument("--text", action="store_true", help="also the transcripts")
    p.add_argument("--modality_only", action="store_true")
    args = p.parse_args(cmd)
    with open(args.config, encoding="utf-8") as f:
        modality = modality_of(yaml.safe_load(f) or {})
    if modality not in MODALITIES:
        sys.exit(f"{args.config}: modality {modality!r} is not one of {', '.join(MODALITIES)}")
    if args.modality_only:
        print(modality)
        return
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
