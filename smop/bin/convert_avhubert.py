#!/usr/bin/env python3
"""Convert an official AV-HuBERT checkpoint (fairseq pickle) to safetensors, without fairseq.

    python -m smop.bin.convert_avhubert large_vox_iter5.pt large_vox_iter5.safetensors

One of the two explicit conversions (with smop.bin.convert_landmarks) where smop reads a pickle,
and only the file you name: the unpickler builds tensors and plain containers and replaces every
other class with an inert stub. Everything else smop loads is safetensors or weights-only.
"""

import argparse

from smop.encoders.avhubert.checkpoint import convert_fairseq_checkpoint
from smop.utils.log import setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="fairseq checkpoint, e.g. large_vox_iter5.pt")
    parser.add_argument("dst", help="output .safetensors")
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    setup_logging()
    if not args.dst.endswith(".safetensors"):
        raise SystemExit(f"{args.dst}: the output name must end with .safetensors")
    config = convert_fairseq_checkpoint(args.src, args.dst)
    print(f"{args.dst}: {config['encoder_layers']} layers, dim {config['encoder_embed_dim']}")


if __name__ == "__main__":
    main()
