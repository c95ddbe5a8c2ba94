#!/usr/bin/env python3
"""Split the utterance ids of a table into N key files <out_prefix>.{1..N}.scp (contiguous parts).

python -m smop.bin.split_keys --keys data/test/text --nj 4 --out_prefix exp/x/logdir/keys
"""

import argparse
from pathlib import Path
from typing import List, Sequence

from smop.data.datadir import read_table
from smop.utils.io import atomic_write


def split(keys: Sequence[str], nj: int) -> List[List[str]]:
    """``keys`` in ``nj`` contiguous parts, as the recipe's decoding jobs get them."""
    if not 1 <= nj <= len(keys):
        raise ValueError(f"--nj must be in 1..{len(keys)} (the number of utterances), got {nj}")
    return [list(keys[j * len(keys) // nj : (j + 1) * len(keys) // nj]) for j in range(nj)]


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--keys", type=Path, required=True)
    p.add_argument("--nj", type=int, required=True)
    p.add_argument("--out_prefix", required=True)
    args = p.parse_args(cmd)
    keys = [k for k, _ in read_table(args.keys)]
    try:
        parts = split(keys, args.nj)
    except ValueError as e:
        raise SystemExit(str(e)) from e
    for j, part in enumerate(parts):
        with atomic_write(f"{args.out_prefix}.{j + 1}.scp") as f:
            f.writelines(f"{k}\n" for k in part)


if __name__ == "__main__":
    main()
