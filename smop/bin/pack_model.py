#!/usr/bin/env python3
"""Pack a trained experiment into a self-contained folder that loads anywhere (ESPnet's packing stage).

    python -m smop.bin.pack_model --exp_dir exp/train_dedr --out_dir exp/train_dedr/pack [--copy_pretrained all]

The folder is laid out as a Hugging Face model repository (upload it with
``hf upload <you>/<name> <out_dir>``): README.md (model card), config.yaml, decode.yaml,
model.safetensors (the trained weights only), meta.yaml, and for video models mouth_crop.yaml with
its reference face. Pretrained parts are named by hub id (a path in the HF cache is recognised, or
give --pretrained_hub_id) or copied in with --copy_pretrained. Load it with
``smop.Speech2Text.from_pretrained(<out_dir or hub id>)`` or ``smop-transcribe --model <out_dir>``.
Paths in the training config are relative to --root (the recipe directory).
"""

import argparse
import re
import sys
from pathlib import Path
from typing import Dict, List

from smop.experiment import ExperimentError
from smop.inference.pack_layout import PackError
from smop.inference.pack_writer import PackOptions, write_pack
from smop.inference.pretrained import SLOTS
from smop.utils.log import setup_logging
from smop.utils.pretrained import PretrainedError


def slot_values(items: List[str], option: str) -> Dict[str, str]:
    """``SLOT=VALUE`` options (each may hold several, comma-separated) -> {slot: value}."""
    out = {}
    for item in items:
        for pair in filter(None, item.split(",")):
            slot, sep, value = pair.partition("=")
            if not sep or slot not in SLOTS or not value:
                raise ValueError(f"{option} takes SLOT=VALUE with SLOT one of {SLOTS}, got {pair!r}")
            out[slot] = value
    return out


def corpus_of(root: Path):
    """The corpus of a recipe directory egs/<corpus>/<recipe>."""
    m = re.search(r"/egs/([^/]+)/[^/]+$", str(root.resolve()))
    return m.group(1) if m else None


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", type=Path, required=True, help="the training directory (config.yaml, checkpoints)")
    p.add_argument("--out_dir", type=Path, required=True, help="the pack's folder (replaced whole)")
    p.add_argument(
        "--root", type=Path, default=PackOptions.root, help="what relative paths in the config are relative to"
    )
    p.add_argument("--inference_model", default=PackOptions.inference_model, help="the checkpoint of --exp_dir to pack")
    p.add_argument(
        "--decode_config",
        type=Path,
        help="decoding settings (keys of avsr_inference); default: those the test sets were decoded with",
    )
    p.add_argument("--decode_tag", help="the decoding whose results the card shows (default: the only decode_* dir)")
    p.add_argument(
        "--copy_pretrained",
        default="none",
        help="pretrained parts to copy into the pack: none, all, or slots (audio_encoder,video_encoder,decoder)",
    )
    p.add_argument(
        "--pretrained_hub_id",
        action="append",
        default=[],
        metavar="SLOT=ID",
        help="the hub id of a pretrained part given by a local path (e.g. decoder=meta-llama/Llama-3.2-1B)",
    )
    p.add_argument(
        "--part_license",
        action="append",
        default=[],
        metavar="SLOT=LICENCE",
        help="licence of a pretrained part (default: its model card's, if any)",
    )
    p.add_argument("--license", help="licence of the pack (default: its parts' common licence, else 'other')")
    p.add_argument("--name", help="the model's name in its card (default: the experiment's)")
    p.add_argument("--hub_id", help="the hub id the pack will be uploaded as (used in the card's examples)")
    p.add_argument("--corpus", help="the training corpus, for the card (default: <corpus> of egs/<corpus>/<recipe>)")
    p.add_argument("--language", default=PackOptions.language, help="the language of the card's metadata")
    return p


def main(cmd=None):
    parser = get_parser()
    args = parser.parse_args(cmd)
    setup_logging()
    copy = [s for s in args.copy_pretrained.split(",") if s and s != "none"]
    try:
        opts = PackOptions(
            exp_dir=args.exp_dir,
            out_dir=args.out_dir,
            root=args.root,
            inference_model=args.inference_model,
            decode_config=args.decode_config,
            decode_tag=args.decode_tag,
            copy_pretrained=copy,
            hub_ids=slot_values(args.pretrained_hub_id, "--pretrained_hub_id"),
            part_licenses=slot_values(args.part_license, "--part_license"),
            license=args.license,
            name=args.name,
            hub_id=args.hub_id,
            corpus=args.corpus or corpus_of(args.root),
            language=args.language,
        )
        out = write_pack(opts)
    except (PackError, PretrainedError, ExperimentError, ValueError, FileNotFoundError) as e:
        sys.exit(f"pack_model: {e}")
    print(out)


if __name__ == "__main__":
    main()
